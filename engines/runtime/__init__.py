"""Inference runtimes: the same model pack served by ONNX Runtime (CPU) or TensorRT (GPU).

`engine.infer(batch) -> logits`; `create_engine` picks a runtime by config or by what the
machine has.
"""

from __future__ import annotations

import logging
from typing import Literal

from engines.registry import ModelPack
from engines.runtime.base import Engine, EngineUnavailable

log = logging.getLogger(__name__)

RuntimeName = Literal["auto", "onnxruntime", "tensorrt"]


def create_engine(
    pack: ModelPack,
    runtime: RuntimeName = "auto",
    *,
    threads: int = 0,
    max_batch: int = 32,
    cache_dir: str = "~/.cache/verity/engines",
) -> Engine:
    """An engine for `pack`. `auto` prefers TensorRT when it can run here, else ONNX Runtime."""
    if runtime in ("auto", "tensorrt"):
        from engines.runtime import tensorrt as trt_runtime

        reason = trt_runtime.unavailable_reason()
        if reason is None:
            try:
                return trt_runtime.TensorRTEngine(pack, max_batch=max_batch, cache_dir=cache_dir)
            except trt_runtime.EngineBuildError as exc:
                if runtime == "tensorrt":
                    raise EngineUnavailable(f"TensorRT engine for {pack.id}: {exc}") from exc
                log.warning("TensorRT engine for %s failed (%s); using ONNX Runtime", pack.id, exc)
                reason = str(exc)
        if runtime == "tensorrt":
            raise EngineUnavailable(f"runtime tensorrt requested for {pack.id}, but {reason}")
        log.debug("TensorRT not used for %s: %s", pack.id, reason)
    from engines.runtime.onnxruntime import OnnxRuntimeEngine

    return OnnxRuntimeEngine(pack, threads=threads)


__all__ = ["Engine", "EngineUnavailable", "create_engine"]
