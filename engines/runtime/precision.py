"""Will an FP16 engine agree with the FP32 model? A check that runs on a CPU, before any GPU.

`check_fp16(pack, crops, threshold)` converts the pack's ONNX model to FP16 with its I/O
types kept (uint8 crops in, float32 logits out), runs the FP32 and FP16 models with ONNX
Runtime on the same crops, and reports the largest logit and probability differences and
whether any decision at the threshold flips (`Fp16Report`; `verity engines check-fp16`
prints `report.summary()`).

How the FP16 model is made: onnxconverter-common's `float16.convert_float_to_float16`
(keep_io_types=True). Two settings differ from its defaults, on purpose:
- `Cast` is added to the op block list: the converter marks the output of the graph's own
  uint8 -> float Cast as float16 without changing the Cast, which ONNX Runtime then rejects;
  blocked, the Cast stays FP32 and a Cast to FP16 follows it.
- constants are clamped to FP16's own range (max 65504, smallest subnormal 2**-24) instead
  of the converter's 1e4 / 1e-7, which is what storing them as FP16 on a GPU does.

What it measures, and what it does not: every weight and every tensor between ops is
rounded to FP16 (ONNX Runtime's CPU provider computes ops that lack FP16 kernels in FP32
between inserted casts). TensorRT also fuses layers, may keep some layers in FP32 and may
accumulate in FP16, so its numbers differ somewhat; a large difference or a flipped
decision here is a real warning, a small one is encouraging but not proof. On a GPU,
`check_engine_agreement(pack, crops, engine)` compares the real TensorRT engine with the
FP32 ONNX Runtime model using the same report.

Where this ran: all of it runs on the CPU machine (tests/engines/runtime/test_precision.py);
check_engine_agreement with a TensorRT engine only on a GPU machine.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engines.registry import Calibration, ModelPack
from engines.runtime.sessions import cpu_session

FP16_MAX = 65504.0
FP16_MIN_SUBNORMAL = 2.0**-24


@dataclass(frozen=True)
class Fp16Report:
    """FP32 reference vs a candidate (FP16 ONNX, or a TensorRT engine) on the same crops."""

    model: str
    candidate: str
    samples: int
    threshold: float
    max_abs_logit_diff: float
    mean_abs_logit_diff: float
    max_abs_prob_diff: float
    flips: int
    flipped: tuple[int, ...] = ()
    nonfinite: int = 0
    closest_to_threshold: float = math.inf
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """No decision flipped and every candidate output is finite."""
        return self.flips == 0 and self.nonfinite == 0

    def summary(self) -> str:
        verdict = "OK: no decision changes" if self.ok else "WARNING: decisions change"
        lines = [
            f"FP16 check for {self.model} ({self.candidate}), {self.samples} crops",
            f"  max |logit diff|        {self.max_abs_logit_diff:.6f}"
            f"  (mean {self.mean_abs_logit_diff:.6f})",
            f"  max |probability diff|  {self.max_abs_prob_diff:.6f}",
            f"  decisions flipped at threshold {self.threshold:g}: {self.flips}"
            + (f"  (crops {list(self.flipped[:20])})" if self.flipped else ""),
            f"  closest FP32 probability to the threshold: {self.closest_to_threshold:.6f} away",
        ]
        if self.nonfinite:
            lines.append(f"  non-finite candidate outputs: {self.nonfinite} (FP16 overflow?)")
        lines.extend(f"  note: {note}" for note in self.notes)
        lines.append(f"  {verdict}")
        return "\n".join(lines)


def probabilities(logits: np.ndarray, calibration: Calibration) -> np.ndarray:
    """The card's calibrated probability (engines.registry.calibrated)."""
    return calibration.apply(logits)


def compare_outputs(
    reference: np.ndarray,
    candidate: np.ndarray,
    *,
    calibration: Calibration,
    threshold: float,
    model: str = "",
    candidate_name: str = "candidate",
    notes: tuple[str, ...] = (),
) -> Fp16Report:
    """The report for two logit vectors from the same crops."""
    ref = np.asarray(reference, np.float64).reshape(-1)
    cand = np.asarray(candidate, np.float64).reshape(-1)
    if ref.shape != cand.shape:
        raise ValueError(f"reference has {ref.shape[0]} logits, candidate {cand.shape[0]}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be a probability in (0, 1), got {threshold}")
    finite = np.isfinite(cand)
    p_ref = probabilities(ref, calibration)
    p_cand = probabilities(np.where(finite, cand, 0.0), calibration)
    diff = np.abs(ref - cand)[finite]
    pdiff = np.abs(p_ref - p_cand)[finite]
    flipped = np.flatnonzero(((p_ref >= threshold) != (p_cand >= threshold)) & finite)
    return Fp16Report(
        model=model,
        candidate=candidate_name,
        samples=int(ref.size),
        threshold=float(threshold),
        max_abs_logit_diff=float(diff.max()) if diff.size else 0.0,
        mean_abs_logit_diff=float(diff.mean()) if diff.size else 0.0,
        max_abs_prob_diff=float(pdiff.max()) if pdiff.size else 0.0,
        flips=int(flipped.size),
        flipped=tuple(int(i) for i in flipped),
        nonfinite=int((~finite).sum()),
        closest_to_threshold=float(np.abs(p_ref - threshold).min()) if ref.size else math.inf,
        notes=notes,
    )


def convert_to_fp16(onnx_model: Any) -> tuple[Any, list[str]]:
    """An FP16 copy of an ONNX ModelProto (I/O types kept) and notes on what was clamped."""
    try:
        from onnxconverter_common import float16
    except ImportError as exc:
        raise RuntimeError(
            f"the FP16 check needs onnxconverter-common (pip install onnxconverter-common): {exc}"
        ) from exc
    block = list(float16.DEFAULT_OP_BLOCK_LIST) + ["Cast"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        converted = float16.convert_float_to_float16(
            onnx_model,
            min_positive_val=FP16_MIN_SUBNORMAL,
            max_finite_val=FP16_MAX,
            keep_io_types=True,
            op_block_list=block,
        )
    notes = sorted({str(w.message) for w in caught if "truncated" in str(w.message)})
    return converted, notes


def _session(model_bytes: bytes, *, threads: int, optimize: bool) -> Any:
    # The FP16 model runs with basic optimisations only, so no fusion rewrites its casts.
    return cpu_session(model_bytes, threads, optimize=optimize)


def _run(session: Any, crops: np.ndarray, batch: int) -> np.ndarray:
    name = session.get_inputs()[0].name
    out = []
    for start in range(0, len(crops), batch):
        chunk = crops[start : start + batch]
        (logits,) = session.run(None, {name: chunk})
        out.append(np.asarray(logits, np.float32).reshape(len(chunk)))
    return np.concatenate(out) if out else np.empty(0, np.float32)


def _check_crops(pack: ModelPack, crops: np.ndarray) -> np.ndarray:
    from engines.runtime.tensorrt import expected_sample_shape

    crops = np.ascontiguousarray(crops)
    if crops.dtype != np.uint8:
        raise ValueError(f"crops must be uint8 (the pack contract), got {crops.dtype}")
    expected = expected_sample_shape(pack.card.input)
    if crops.shape[1:] != expected or len(crops) == 0:
        raise ValueError(f"{pack.id} takes crops of shape (N, {expected}); got {crops.shape}")
    return crops


def check_fp16(
    pack: ModelPack,
    crops: np.ndarray,
    threshold: float | None = None,
    *,
    batch: int = 32,
    threads: int = 0,
) -> Fp16Report:
    """FP32 vs FP16 ONNX Runtime on `crops` (uint8, the pack's input shape).

    threshold: the probability that raises an alert; default the card's shipped threshold.
    """
    import onnx

    crops = _check_crops(pack, crops)
    threshold = pack.card.threshold if threshold is None else float(threshold)
    model = onnx.load(str(pack.onnx_path))  # with external weights, if any
    fp32_bytes = model.SerializeToString()
    fp16_model, notes = convert_to_fp16(model)
    fp16_bytes = fp16_model.SerializeToString()
    reference = _run(_session(fp32_bytes, threads=threads, optimize=True), crops, batch)
    candidate = _run(_session(fp16_bytes, threads=threads, optimize=False), crops, batch)
    return compare_outputs(
        reference,
        candidate,
        calibration=pack.card.calibration,
        threshold=threshold,
        model=pack.id,
        candidate_name="FP16 ONNX (onnxconverter-common) on ONNX Runtime CPU",
        notes=tuple(notes),
    )


def check_engine_agreement(
    pack: ModelPack,
    crops: np.ndarray,
    engine: Any,
    threshold: float | None = None,
    *,
    batch: int = 32,
) -> Fp16Report:
    """FP32 ONNX Runtime vs any engine (on a GPU: the TensorRT FP16 engine) on `crops`."""
    import onnx

    crops = _check_crops(pack, crops)
    threshold = pack.card.threshold if threshold is None else float(threshold)
    reference = _run(
        _session(onnx.load(str(pack.onnx_path)).SerializeToString(), threads=0, optimize=True),
        crops,
        batch,
    )
    candidate = np.concatenate(
        [
            np.asarray(engine.infer(crops[s : s + batch]), np.float32)
            for s in range(0, len(crops), batch)
        ]
    )
    name = f"{getattr(engine, 'runtime', type(engine).__name__)} engine"
    return compare_outputs(
        reference,
        candidate,
        calibration=pack.card.calibration,
        threshold=threshold,
        model=pack.id,
        candidate_name=name,
    )
