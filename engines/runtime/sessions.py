"""The one way Verity opens an ONNX Runtime session, and reads logits from it.

Threads are capped and never spin: idle ORT threads that spin eat the cores the decoder
threads need (measured: every other figure collapses), so every session, in the agent and in
the tools, is made here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

INPUT_NAME = "crops"


def cpu_session(
    model: Path | str | bytes, threads: int = 0, *, optimize: bool = True,
    providers: list[str] | None = None,
) -> Any:
    """A session of an ONNX file or serialized model. `optimize=False` keeps basic graph
    optimisations only (an FP16 model whose casts must not be fused away)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or min(os.cpu_count() or 1, 4)
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
        else ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    )
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=providers or ["CPUExecutionProvider"])


def session_logits(session_or_path: Any, crops: np.ndarray, batch: int = 64) -> np.ndarray:
    """The `logits` output for crops (N, H, W, 3) or windows (N, T, H, W, 3), in batches."""
    session = (cpu_session(session_or_path) if isinstance(session_or_path, (str, Path))
               else session_or_path)
    name = session.get_inputs()[0].name
    out = [
        session.run(None, {name: np.ascontiguousarray(crops[i : i + batch], np.uint8)})[0]
        for i in range(0, len(crops), batch)
    ]
    return np.concatenate(out).reshape(-1) if out else np.zeros(0, np.float32)
