"""ONNX export of a crop classifier with the preprocessing baked in, and its checks.

The graph: input `crops` uint8 [N, H, W, 3] BGR (dynamic N) -> float, (x - mean) / std, BGR ->
RGB, NHWC -> NCHW -> network -> output `logits` float32 [N] (and, with `embedding`, a second
output `embedding` float32 [N, C]: the pooled features the out-of-distribution check reads).
Exported with the TorchScript exporter (dynamo=False), opset 17, as one file.

    python -m engines.export --bench engines/packs/spatial-sbi   # ms per face, batch 1 and 16
    python -m engines.export --sweep                             # the architecture variants
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from engines.runtime.sessions import INPUT_NAME, cpu_session, session_logits

OUTPUT_NAME = "logits"
EMBEDDING_NAME = "embedding"
OPSET = 17


def export_onnx(net, path: Path, size: int, *, opset: int = OPSET, embedding: bool = False) -> Path:
    """Export `net` (float NCHW normalised RGB -> (N,) logits) wrapped with its preprocessing."""
    import torch

    from engines.models.cnn import CropClassifier

    model = CropClassifier(net, embedding=embedding).eval()
    outputs = [OUTPUT_NAME, EMBEDDING_NAME] if embedding else [OUTPUT_NAME]
    dummy = torch.zeros(2, size, size, 3, dtype=torch.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            model,
            (dummy,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=outputs,
            dynamic_axes={INPUT_NAME: {0: "N"}, **{name: {0: "N"} for name in outputs}},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    import onnx

    onnx.checker.check_model(onnx.load(str(path)))
    return path


def torch_logits(net, crops: np.ndarray) -> np.ndarray:
    import torch

    from engines.models.cnn import CropClassifier

    model = CropClassifier(net).eval()
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(crops, np.uint8))).numpy()


def verify_export(net, path: Path, crops: np.ndarray) -> float:
    """Max abs difference between torch and ONNX Runtime logits on a batch."""
    return float(np.max(np.abs(torch_logits(net, crops) - session_logits(path, crops))))


def benchmark(
    path: Path, size: int, batches: tuple[int, ...] = (1, 16), *, threads: int = 0,
    seconds: float = 3.0, seed: int = 0, frames: int = 1, unit: str = "face",
) -> dict:
    """ONNX Runtime CPU latency: ms per call and per sample (a face, or a window of `frames`
    crops for a temporal model), median over repeated calls."""
    session = cpu_session(path, threads)
    rng = np.random.default_rng(seed)
    sample = (size, size, 3) if frames == 1 else (frames, size, size, 3)
    out = {}
    for batch in batches:
        crops = rng.integers(0, 256, (batch, *sample), dtype=np.uint8)
        for _ in range(3):
            session.run(None, {INPUT_NAME: crops})
        times = []
        start = time.perf_counter()
        while time.perf_counter() - start < seconds or len(times) < 10:
            t = time.perf_counter()
            session.run(None, {INPUT_NAME: crops})
            times.append(time.perf_counter() - t)
        ms = 1000 * float(np.median(times))
        out[f"batch{batch}"] = {"ms_per_call": round(ms, 3), f"ms_per_{unit}": round(ms / batch, 3),
                                "calls": len(times)}
    return out


# Architecture variants measured when choosing the shipped model (input size, widths, depths).
SWEEP = {
    "B128": (128, (16, 32, 64, 128), (1, 1, 1, 1)),
    "B160": (160, (16, 32, 64, 128), (1, 1, 1, 1)),
    "A128": (128, (24, 48, 96, 160), (1, 2, 2, 1)),
    "A160": (160, (24, 48, 96, 160), (1, 2, 2, 1)),
    "C128": (128, (32, 64, 128, 256), (1, 2, 2, 1)),
}


def sweep(threads: int = 0, seconds: float = 2.0) -> dict:
    """Export each SWEEP variant (untrained: speed does not depend on the weights) and time it."""
    import tempfile

    import torch

    from engines.models import VerityCNN, count_macs

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (size, widths, depths) in SWEEP.items():
            torch.manual_seed(0)
            net = VerityCNN(widths, depths).eval()
            path = export_onnx(net, Path(tmp) / f"{name}.onnx", size)
            timing = benchmark(path, size, (1, 16), threads=threads, seconds=seconds)
            out[name] = {
                "input": size, "widths": list(widths), "depths": list(depths),
                "macs_M": round(count_macs(net, size) / 1e6),
                "params_M": round(sum(p.numel() for p in net.parameters()) / 1e6, 2),
                "onnx_MB": round(path.stat().st_size / 1e6, 2),
                "b1_ms_per_face": timing["batch1"]["ms_per_face"],
                "b16_ms_per_face": timing["batch16"]["ms_per_face"],
            }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check or benchmark an exported model pack.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--bench", help="pack folder or shipped pack name")
    group.add_argument("--sweep", action="store_true",
                       help="time the architecture variants in engines.export.SWEEP")
    parser.add_argument("--threads", type=int, default=0, help="ORT intra-op threads (0: auto)")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    if args.sweep:
        print(json.dumps(sweep(args.threads, args.seconds), indent=2))
        return 0
    from engines.registry import resolve_pack

    pack = resolve_pack(args.bench)
    result = benchmark(pack.onnx_path, pack.card.input.size, threads=args.threads,
                       seconds=args.seconds)
    result["onnx_bytes"] = pack.onnx_path.stat().st_size
    result["threads"] = args.threads or min(os.cpu_count() or 1, 4)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
