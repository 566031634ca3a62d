"""TensorRT FP16 runtime (datacenter GPUs and Jetson). Imported lazily: most hosts lack it.

Nothing here imports tensorrt, a CUDA binding or onnx at module import time, and nothing
imports torch at all. The pieces:

- `unavailable_reason()`: None only when `tensorrt` imports and a CUDA device is visible;
  otherwise one sentence saying why (what `create_engine` puts in EngineUnavailable).
- `optimization_profile_shapes()`, `sample_shape_for()`: the dynamic-batch profile.
- `engine_cache_key()` / `engine_cache_path()` (from engine_cache): an engine is reused only
  for the same ONNX bytes, TensorRT version, GPU model, compute capability, max batch and
  precision; a cached file that does not deserialize is rebuilt with a warning.
- `build_engine(pack, cache_dir, ...)`: parse the ONNX (every parser error reported), FP16
  when the GPU has fast FP16, the profile, build, save atomically under a build lock. Meant
  to run ahead of time on a Jetson (`verity engines build`), where a build takes minutes
  to tens of minutes.
- `TensorRTEngine`: load-or-build, device buffers for max_batch, `infer()` splitting larger
  batches, TensorRT 10 `set_input_shape` / `set_tensor_address` / `execute_async_v3`.

Where this ran: TensorRT cannot be installed on the CPU-only development machines. There,
tests cover unavailable_reason (real: tensorrt missing, and the real cuda-python 13 saying
"no driver"), create_engine's errors and fallback, the cache (keys, paths, locks, atomic
writes, corrupt-file rebuild), profile shapes, sample-shape resolution, parser-error
formatting and the FP16 decision; and this module end to end (build_engine, TensorRTEngine,
infer with batch splitting, rebuild after "version tag does not match") against stand-ins
for `tensorrt` and cuda-python written from their documented APIs
(tests/engines/runtime/fakes.py). That checks Verity's orchestration, not TensorRT: real
parsing, building, deserializing and execution have only a GPU machine to prove them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engines.backbone import runnable_onnx
from engines.registry import InputSpec, ModelPack, file_sha256
from engines.runtime.base import EngineUnavailable
from engines.runtime.cuda_backend import CudaUnavailable, DeviceInfo, visible_device
from engines.runtime.engine_cache import (
    PRECISIONS,
    EngineBuildError,
    LoadOutcome,
    engine_cache_key,
    engine_cache_path,
    load_or_build,
    write_metadata,
)

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = "~/.cache/verity/engines"

__all__ = [
    "DEFAULT_CACHE_DIR",
    "EngineBuildError",
    "TensorRTEngine",
    "build_engine",
    "engine_cache_key",
    "engine_cache_path",
    "format_parser_errors",
    "has_fast_fp16",
    "optimization_profile_shapes",
    "sample_shape_for",
    "split_batches",
    "unavailable_reason",
]


# --------------------------------------------------------------------------------------
# Availability
# --------------------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def _import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except Exception as exc:  # ImportError, or OSError from a missing libnvinfer/libnvonnxparser
        raise EngineUnavailable(
            "the tensorrt package cannot be imported "
            f"({exc.__class__.__name__}: {_first_line(exc)})"
        ) from exc
    return trt


def unavailable_reason(device: int = 0) -> str | None:
    """Why TensorRT cannot run here, or None when it can."""
    try:
        _import_tensorrt()
    except EngineUnavailable as exc:
        return str(exc)
    try:
        visible_device(device)
    except CudaUnavailable as exc:
        return str(exc)
    return None


# --------------------------------------------------------------------------------------
# Shapes, batches, precision (pure; tested on the CPU)
# --------------------------------------------------------------------------------------


def optimization_profile_shapes(
    input_shape_without_batch: Sequence[int], max_batch: int, opt_batch: int | None = None
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(min, opt, max) shapes for the dynamic batch axis.

    min is batch 1 (one face). opt defaults to max_batch: TensorRT tunes kernels for opt,
    and batches fill up exactly when the agent is loaded, which is when speed matters.
    """
    sample = tuple(int(d) for d in input_shape_without_batch)
    if not sample or any(d <= 0 for d in sample):
        raise ValueError(
            f"crop shape must be static and positive, got {tuple(input_shape_without_batch)}"
        )
    max_batch = int(max_batch)
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    opt = max_batch if opt_batch is None else int(opt_batch)
    if not 1 <= opt <= max_batch:
        raise ValueError(f"opt_batch must be within 1..{max_batch}, got {opt_batch}")
    return (1, *sample), (opt, *sample), (max_batch, *sample)


def expected_sample_shape(spec: InputSpec) -> tuple[int, ...]:
    """Per-sample input shape the model card promises: (H, W, 3) or (T, H, W, 3)."""
    if spec.layout == "NTHWC" or spec.frames > 1:
        return (spec.frames, spec.size, spec.size, 3)
    return (spec.size, spec.size, 3)


def sample_shape_for(network_input_dims: Sequence[int], spec: InputSpec) -> tuple[int, ...]:
    """The per-sample shape to build for, from the parsed network's input dims (-1 where
    dynamic) checked against the card. Only the batch axis may be dynamic."""
    dims = [int(d) for d in network_input_dims]
    expected = expected_sample_shape(spec)
    if len(dims) != len(expected) + 1:
        raise EngineBuildError(
            f"the ONNX input has rank {len(dims)} ({dims}); the model card describes "
            f"batch x {expected}"
        )
    if dims[0] != -1:
        raise EngineBuildError(
            f"the ONNX input's batch axis is fixed at {dims[0]}; export it with a dynamic "
            "batch axis so one engine serves batches of 1..max_batch"
        )
    sample: list[int] = []
    for axis, (got, want) in enumerate(zip(dims[1:], expected, strict=True), start=1):
        if got == -1:
            sample.append(want)  # a dynamic crop axis: the card says what we feed
        elif got != want:
            raise EngineBuildError(
                f"the ONNX input's axis {axis} is {got}, the model card says {want} "
                f"(input dims {dims}, card {expected})"
            )
        else:
            sample.append(got)
    return tuple(sample)


def split_batches(n: int, max_batch: int) -> list[tuple[int, int]]:
    """[start, stop) slices covering n items in chunks of at most max_batch."""
    if max_batch < 1:
        raise ValueError("max_batch must be >= 1")
    return [(start, min(start + max_batch, n)) for start in range(0, n, max_batch)]


# GPUs whose FP16 is much slower than FP32 (consumer Pascal, sm 6.1) or absent (< 5.3).
def has_fast_fp16(compute_capability: tuple[int, int], builder: Any = None) -> bool:
    """Whether FP16 kernels pay off on this GPU: TensorRT's own answer when the builder
    still offers it (`platform_has_fast_fp16`, deprecated in newer TensorRT 10 releases),
    else the compute-capability rule."""
    flag = getattr(builder, "platform_has_fast_fp16", None) if builder is not None else None
    if isinstance(flag, bool):
        return flag
    major, minor = compute_capability
    if (major, minor) < (5, 3) or (major, minor) == (6, 1):
        return False
    return True


def format_parser_errors(onnx_path: Path | str, parser: Any) -> str:
    """Every ONNX parser error, one per line, with node and operator when TensorRT tells."""
    lines = [f"TensorRT could not parse {onnx_path} ({parser.num_errors} error(s)):"]
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        parts = []
        for label, attr in (("node", "node_name"), ("op", "node_operator")):
            getter = getattr(err, attr, None)
            with contextlib.suppress(Exception):
                value = getter() if callable(getter) else None
                if value:
                    parts.append(f"{label} {value}")
        if not parts:
            with contextlib.suppress(Exception):
                node = err.node()
                if node is not None and node >= 0:
                    parts.append(f"node #{node}")
        where = f" [{', '.join(parts)}]" if parts else ""
        code = ""
        with contextlib.suppress(Exception):
            code = f" ({err.code()})"
        lines.append(f"  {i + 1}. {err.desc()}{code}{where}")
    lines.append(
        "  Check the graph with engines.runtime.onnx_prep.tensorrt_compat_issues(); a uint8 "
        "input must feed a Cast directly."
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# TensorRT plumbing (GPU only)
# --------------------------------------------------------------------------------------

_LOGGER: Any = None
_LOGGER_LOCK = threading.Lock()


def _trt_logger(trt: Any) -> Any:
    """One process-wide TensorRT logger that forwards to Python logging and lets a call
    capture the errors TensorRT reports (deserialize/build return None and say why only
    through the logger, e.g. "version tag does not match")."""
    global _LOGGER
    with _LOGGER_LOCK:
        if _LOGGER is not None:
            return _LOGGER
        severity = trt.ILogger.Severity
        levels = {
            severity.INTERNAL_ERROR: logging.ERROR,
            severity.ERROR: logging.ERROR,
            severity.WARNING: logging.WARNING,
            severity.INFO: logging.DEBUG,  # TensorRT's INFO is chatty
            severity.VERBOSE: logging.DEBUG,
        }
        trt_log = logging.getLogger("tensorrt")

        class _Logger(trt.ILogger):
            def __init__(self) -> None:
                trt.ILogger.__init__(self)
                self._local = threading.local()

            def log(self, sev: Any, msg: str) -> None:
                level = levels.get(sev, logging.INFO)
                trt_log.log(level, "%s", msg)
                captured = getattr(self._local, "errors", None)
                if captured is not None and level >= logging.ERROR:
                    captured.append(msg)

            @contextlib.contextmanager
            def capture(self) -> Iterator[list[str]]:
                previous = getattr(self._local, "errors", None)
                self._local.errors = []
                try:
                    yield self._local.errors
                finally:
                    self._local.errors = previous

        _LOGGER = _Logger()
        return _LOGGER


def _deserializer(trt: Any) -> Any:
    logger = _trt_logger(trt)
    runtime = trt.Runtime(logger)

    def deserialize(data: bytes) -> Any:
        with logger.capture() as errors:
            engine = runtime.deserialize_cuda_engine(data)
        if engine is None:
            raise EngineBuildError("; ".join(errors) or "TensorRT could not deserialize it")
        return engine

    deserialize.runtime = runtime  # keep the runtime alive as long as its engines
    return deserialize


def _onnx_bytes_for_tensorrt(pack: ModelPack) -> bytes:
    """The pack's ONNX, with uint8 inputs cast first when `onnx` is installed (see onnx_prep)."""
    data = runnable_onnx(pack).read_bytes()  # a deep pack: its head joined with the backbone
    try:
        from engines.runtime.onnx_prep import prepare_for_tensorrt
    except ImportError:
        log.debug("onnx is not installed: %s is parsed as shipped", pack.onnx_path)
        return data
    try:
        prepared, notes = prepare_for_tensorrt(data)
    except ValueError as exc:
        log.warning("%s: %s; parsing it as shipped", pack.id, exc)
        return data
    for note in notes:
        log.info("%s: %s", pack.id, note)
    return prepared


def _build_serialized(
    trt: Any,
    pack: ModelPack,
    *,
    max_batch: int,
    precision: str,
    workspace_gib: float | None,
    device: DeviceInfo,
    report: dict[str, Any],
) -> bytes:
    logger = _trt_logger(trt)
    builder = trt.Builder(logger)
    major = int(str(trt.__version__).split(".", 1)[0])
    # TensorRT 10 networks are always explicit-batch; 8.x needs the flag.
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    onnx_bytes = _onnx_bytes_for_tensorrt(pack)
    # The path lets the parser find external weight files next to the ONNX file.
    if not parser.parse(onnx_bytes, str(pack.onnx_path)):
        raise EngineBuildError(format_parser_errors(pack.onnx_path, parser))
    # Without `onnx` the graph arrives as shipped: serve the logits only here as well.
    outputs = [network.get_output(i) for i in range(network.num_outputs)]
    if len(outputs) > 1 and any(t.name == "logits" for t in outputs):
        for tensor in outputs:
            if tensor.name != "logits":
                network.unmark_output(tensor)
    if network.num_inputs != 1 or network.num_outputs != 1:
        raise EngineBuildError(
            f"{pack.onnx_path}: expected one input and one output, got "
            f"{network.num_inputs} and {network.num_outputs}"
        )
    tensor = network.get_input(0)
    sample = sample_shape_for(tuple(tensor.shape), pack.card.input)
    shapes = optimization_profile_shapes(sample, max_batch)

    config = builder.create_builder_config()
    if workspace_gib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    used = "fp32"
    if precision == "fp16":
        if has_fast_fp16(device.compute_capability, builder):
            config.set_flag(trt.BuilderFlag.FP16)
            used = "fp16"
        else:
            log.warning(
                "%s (sm %s) has no fast FP16: building %s in FP32", device.name, device.sm, pack.id
            )
    profile = builder.create_optimization_profile()
    profile.set_shape(tensor.name, *shapes)
    config.add_optimization_profile(profile)

    log.info(
        "building TensorRT %s engine for %s on %s (sm %s), batch 1..%d; this takes minutes "
        "(tens of minutes on a Jetson)",
        used,
        pack.id,
        device.name,
        device.sm,
        max_batch,
    )
    started = time.monotonic()
    with logger.capture() as errors:
        serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(
            f"TensorRT could not build {pack.id}: " + ("; ".join(errors) or "no reason logged")
        )
    report.update(
        precision_used=used,
        profile={"min": shapes[0], "opt": shapes[1], "max": shapes[2]},
        input_name=tensor.name,
        build_seconds=round(time.monotonic() - started, 1),
    )
    return bytes(memoryview(serialized))


def _load_or_build(
    trt: Any,
    pack: ModelPack,
    *,
    cache_dir: str | Path,
    max_batch: int,
    precision: str,
    workspace_gib: float | None,
    device: DeviceInfo,
    force: bool = False,
) -> tuple[Any, Path, LoadOutcome, Any]:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    onnx_sha = file_sha256(runnable_onnx(pack))
    path = engine_cache_path(
        cache_dir,
        pack,
        trt_version=str(trt.__version__),
        device_name=device.name,
        compute_capability=device.compute_capability,
        max_batch=max_batch,
        precision=precision,
        onnx_sha256=onnx_sha,
    )
    deserialize = _deserializer(trt)
    report: dict[str, Any] = {}

    def build() -> bytes:
        return _build_serialized(
            trt,
            pack,
            max_batch=max_batch,
            precision=precision,
            workspace_gib=workspace_gib,
            device=device,
            report=report,
        )

    def on_built(engine_path: Path, seconds: float) -> None:
        write_metadata(
            engine_path,
            {
                "model": pack.id,
                "onnx": str(pack.onnx_path),
                "onnx_sha256": onnx_sha,
                "tensorrt": str(trt.__version__),
                "device": device.name,
                "compute_capability": device.sm,
                "max_batch": max_batch,
                "precision_requested": precision,
                "key": engine_cache_key(
                    onnx_sha,
                    str(trt.__version__),
                    device.name,
                    device.compute_capability,
                    max_batch,
                    precision,
                ),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                **report,
            },
        )
        log.info("built %s in %.0f s -> %s", pack.id, seconds, engine_path)

    engine, outcome = load_or_build(
        path, deserialize=deserialize, build=build, force=force, on_built=on_built
    )
    return engine, path, outcome, deserialize.runtime


def build_engine(
    pack: ModelPack,
    cache_dir: str | Path = DEFAULT_CACHE_DIR,
    max_batch: int = 32,
    precision: str = "fp16",
    workspace_gib: float | None = None,
    *,
    device: int = 0,
    force: bool = False,
) -> Path:
    """Build (or verify the cached) engine for `pack` on this GPU; return its path.

    Ahead-of-time use: `verity engines build` on the target machine (a Jetson builds for
    tens of minutes; the agent then starts in seconds). workspace_gib caps TensorRT's
    scratch memory (None: TensorRT's default, the device's memory). force rebuilds even a
    good cached engine. Raises EngineUnavailable (no TensorRT/GPU) or EngineBuildError.
    """
    trt = _import_tensorrt()
    try:
        cuda, info = visible_device(device)
    except CudaUnavailable as exc:
        raise EngineUnavailable(str(exc)) from exc
    with cuda.activate(device):
        _, path, outcome, _ = _load_or_build(
            trt,
            pack,
            cache_dir=cache_dir,
            max_batch=max_batch,
            precision=precision,
            workspace_gib=workspace_gib,
            device=info,
            force=force,
        )
    log.info("%s: engine %s (%s)", pack.id, path, outcome)
    return path


# --------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------


class TensorRTEngine:
    """One model pack on one GPU. `infer(uint8 crops) -> float32 logits (N,)`.

    Thread-safe (one execution context, serialised by a lock); batches larger than
    max_batch are split.
    """

    runtime = "tensorrt"

    def __init__(
        self,
        pack: ModelPack,
        *,
        max_batch: int = 32,
        cache_dir: str | Path = DEFAULT_CACHE_DIR,
        precision: str = "fp16",
        device: int = 0,
        workspace_gib: float | None = None,
    ) -> None:
        self.pack = pack
        self.name = pack.id
        self.max_batch = int(max_batch)
        self.precision = precision
        self.device = device
        self._lock = threading.Lock()
        self._closed = True
        trt = _import_tensorrt()
        try:
            self._cuda, self.device_info = visible_device(device)
        except CudaUnavailable as exc:
            raise EngineUnavailable(f"TensorRT engine for {pack.id}: {exc}") from exc
        self._trt = trt
        with self._cuda.activate(device):
            engine, self.engine_path, self.load_outcome, self._runtime = _load_or_build(
                trt,
                pack,
                cache_dir=cache_dir,
                max_batch=self.max_batch,
                precision=precision,
                workspace_gib=workspace_gib,
                device=self.device_info,
            )
            self._engine = engine
            self._setup_io()
        self._closed = False
        log.info(
            "%s: TensorRT %s engine %s (%s) on %s, batch 1..%d",
            self.name,
            precision,
            self.engine_path.name,
            self.load_outcome,
            self.device_info.name,
            self.max_batch,
        )

    def _setup_io(self) -> None:
        trt, engine = self._trt, self._engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise EngineBuildError(f"{self.name}: engine has inputs {inputs}, outputs {outputs}")
        self._input, self._output = inputs[0], outputs[0]
        _, _, max_shape = engine.get_tensor_profile_shape(self._input, 0)
        max_shape = tuple(int(d) for d in max_shape)
        # An engine is cached per max_batch, so this only guards against a mislabelled file.
        if max_shape[0] < self.max_batch:
            raise EngineBuildError(
                f"{self.name}: engine profile allows batch {max_shape[0]} < {self.max_batch}"
            )
        self.sample_shape = max_shape[1:]
        self._out_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(self._output)))
        self._context = engine.create_execution_context()
        if self._context is None:
            raise EngineBuildError(f"{self.name}: could not create an execution context")
        cuda = self._cuda
        self._host_in = cuda.host_empty((self.max_batch, *self.sample_shape), np.uint8)
        self._host_out = cuda.host_empty((self.max_batch,), self._out_dtype)
        self._dev_in = cuda.malloc(self._host_in.nbytes)
        self._dev_out = cuda.malloc(self._host_out.nbytes)
        self._stream = cuda.create_stream()
        # Buffers never move, so the addresses are set once.
        self._context.set_tensor_address(self._input, self._dev_in)
        self._context.set_tensor_address(self._output, self._dev_out)

    # The engine is built from the logits-only graph (onnx_prep.logits_only).
    has_embedding = False

    def infer_with_embedding(self, batch: np.ndarray) -> tuple[np.ndarray, None]:
        return self.infer(batch), None

    def infer(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.uint8)
        if batch.ndim != len(self.sample_shape) + 1 or batch.shape[1:] != self.sample_shape:
            shape = ", ".join(map(str, self.sample_shape))
            raise ValueError(
                f"{self.name}: expected uint8 crops of shape (N, {shape}), got {batch.shape}"
            )
        n = len(batch)
        logits = np.empty(n, np.float32)
        if n == 0:
            return logits
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name}: engine is closed")
            with self._cuda.activate(self.device):
                for start, stop in split_batches(n, self.max_batch):
                    logits[start:stop] = self._run_chunk(batch[start:stop])
        return logits

    def _run_chunk(self, chunk: np.ndarray) -> np.ndarray:
        m = len(chunk)
        cuda, ctx = self._cuda, self._context
        host_in = self._host_in[:m]
        host_in[...] = chunk
        if not ctx.set_input_shape(self._input, (m, *self.sample_shape)):
            raise RuntimeError(
                f"{self.name}: TensorRT rejected input shape {(m, *self.sample_shape)}"
            )
        out_shape = tuple(int(d) for d in ctx.get_tensor_shape(self._output))
        if int(np.prod(out_shape)) != m:
            raise RuntimeError(f"{self.name}: output shape {out_shape} for a batch of {m}")
        cuda.htod_async(self._dev_in, host_in, self._stream)
        if not ctx.execute_async_v3(cuda.stream_handle(self._stream)):
            raise RuntimeError(f"{self.name}: TensorRT execution failed (see the tensorrt log)")
        host_out = self._host_out[:m]
        cuda.dtoh_async(host_out, self._dev_out, self._stream)
        cuda.synchronize(self._stream)
        return host_out.astype(np.float32, copy=True)

    def close(self) -> None:
        """Free device and pinned memory (also done, best effort, at garbage collection)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            cuda = self._cuda
            with contextlib.suppress(Exception), cuda.activate(self.device):
                cuda.synchronize(self._stream)
                cuda.destroy_stream(self._stream)
                cuda.free(self._dev_in)
                cuda.free(self._dev_out)
                cuda.free_host(self._host_in)
                cuda.free_host(self._host_out)
            self._context = None
            self._engine = None

    def __enter__(self) -> TensorRTEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - depends on interpreter shutdown order
        with contextlib.suppress(Exception):
            self.close()
