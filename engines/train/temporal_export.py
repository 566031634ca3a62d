"""ONNX export of the temporal model with its preprocessing inside, and its checks.

The graph: input `crops` uint8 [N, T, H, W, 3] BGR (dynamic N; T, H, W fixed) -> Cast to
float (first op) -> (x - mean) / std -> BGR -> RGB -> N x T x 3 x H x W -> network -> output
`logits` float32 [N]. TorchScript exporter (dynamo=False), opset 17, one file.

    python -m engines.train.temporal_export --bench engines/packs/temporal-sbi
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

# One ONNX Runtime recipe (session, batched logits, latency) for every model.
from engines.export import benchmark
from engines.runtime.sessions import session_logits

INPUT_NAME = "crops"
OUTPUT_NAME = "logits"
OPSET = 17


def export_temporal_onnx(net, path: Path, frames: int, size: int, *, opset: int = OPSET,
                         flip_average: bool = False) -> Path:
    """Export `net` (float N x T x 3 x H x W -> (N,) logits) wrapped with its preprocessing
    (and, with flip_average, the mean over the window and its mirror image)."""
    import onnx
    import torch

    from engines.models.temporal import WindowClassifier

    model = WindowClassifier(net, flip_average).eval()
    dummy = torch.zeros(2, frames, size, size, 3, dtype=torch.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            model,
            (dummy,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "N"}, OUTPUT_NAME: {0: "N"}},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    onnx.checker.check_model(onnx.load(str(path)))
    return path


def torch_window_logits(net, windows: np.ndarray, batch: int = 32, *,
                        flip_average: bool = False) -> np.ndarray:
    import torch

    from engines.models.temporal import WindowClassifier

    model = WindowClassifier(net, flip_average).eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(windows), batch):
            x = torch.from_numpy(np.ascontiguousarray(windows[i : i + batch], np.uint8))
            out.append(model(x).numpy())
    return np.concatenate(out).reshape(-1) if out else np.zeros(0, np.float32)


def onnx_window_logits(session_or_path, windows: np.ndarray, batch: int = 16) -> np.ndarray:
    return session_logits(session_or_path, windows, batch)


def verify_temporal_export(net, path: Path, windows: np.ndarray, *,
                           flip_average: bool = False) -> float:
    """Max abs difference between torch and ONNX Runtime logits on a batch of windows."""
    torch_logits = torch_window_logits(net, windows, flip_average=flip_average)
    return float(np.max(np.abs(torch_logits - onnx_window_logits(path, windows))))


def benchmark_temporal(
    path: Path, frames: int, size: int, batches: tuple[int, ...] = (1, 4), *, threads: int = 0,
    seconds: float = 3.0, seed: int = 0,
) -> dict:
    """ONNX Runtime CPU latency: ms per call and per window, median over repeated calls."""
    return benchmark(path, size, batches, threads=threads, seconds=seconds, seed=seed,
                     frames=frames, unit="window")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark a temporal model pack.")
    parser.add_argument("--bench", required=True, help="pack folder or shipped pack name")
    parser.add_argument("--threads", type=int, default=0, help="ORT intra-op threads (0: auto)")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--batches", default="1,4")
    args = parser.parse_args(argv)
    from engines.registry import resolve_pack

    pack = resolve_pack(args.bench)
    spec = pack.card.input
    batches = tuple(int(b) for b in args.batches.split(","))
    result = benchmark_temporal(pack.onnx_path, spec.frames, spec.size, batches,
                                threads=args.threads, seconds=args.seconds)
    result["onnx_bytes"] = pack.onnx_path.stat().st_size
    result["threads"] = args.threads or min(os.cpu_count() or 1, 4)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
