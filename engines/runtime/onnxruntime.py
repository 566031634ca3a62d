"""ONNX Runtime on the CPU (or any execution provider ORT was built with)."""

from __future__ import annotations

import numpy as np

from engines.backbone import runnable_onnx
from engines.registry import ModelPack
from engines.runtime.sessions import cpu_session


class OnnxRuntimeEngine:
    runtime = "onnxruntime"

    def __init__(self, pack: ModelPack, *, threads: int = 0, providers: list[str] | None = None):
        self.pack = pack
        self.name = pack.id
        self.session = cpu_session(runnable_onnx(pack), threads, providers=providers)
        self._input = self.session.get_inputs()[0].name
        outputs = [o.name for o in self.session.get_outputs()]
        self._logits = "logits" if "logits" in outputs else outputs[0]
        self.has_embedding = "embedding" in outputs

    def infer(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.uint8)
        (logits,) = self.session.run([self._logits], {self._input: batch})
        return np.asarray(logits, np.float32).reshape(len(batch))

    def infer_with_embedding(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if not self.has_embedding:
            return self.infer(batch), None
        batch = np.ascontiguousarray(batch, dtype=np.uint8)
        logits, embedding = self.session.run([self._logits, "embedding"], {self._input: batch})
        return np.asarray(logits, np.float32).reshape(len(batch)), np.asarray(embedding, np.float32)
