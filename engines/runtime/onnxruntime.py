"""ONNX Runtime on the CPU (or any execution provider ORT was built with)."""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort

from engines.backbone import runnable_onnx
from engines.registry import ModelPack


class OnnxRuntimeEngine:
    runtime = "onnxruntime"

    def __init__(self, pack: ModelPack, *, threads: int = 0, providers: list[str] | None = None):
        self.pack = pack
        self.name = pack.id
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(os.cpu_count() or 1, 4)
        options.inter_op_num_threads = 1
        # Spinning ORT threads would starve the decoder threads sharing these cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(runnable_onnx(pack)), options, providers=providers or ["CPUExecutionProvider"]
        )
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
