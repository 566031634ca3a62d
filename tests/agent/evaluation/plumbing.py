"""A plumbing model pack: logits = mean(crop) / 255 * 10 - 5, built with onnx.helper.

Brighter crops score "more fake". It measures nothing; it lets the evaluation run end to end
with real ONNX Runtime inference on any machine, whatever the shipped pack's state.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from engines.registry import InputSpec, ModelCard, write_card


def plumbing_model(size: int = 128) -> onnx.ModelProto:
    def const(name: str, value) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value, np.float32), name)

    nodes = [
        helper.make_node("Cast", ["crops"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["x"], ["mean"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["mean", "gain"], ["scaled"]),
        helper.make_node("Sub", ["scaled", "offset"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "plumbing",
        [helper.make_tensor_value_info("crops", TensorProto.UINT8, ["N", size, size, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N"])],
        initializer=[const("gain", 10.0 / 255.0), const("offset", 5.0)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write_plumbing_pack(folder: Path, threshold: float = 0.5) -> Path:
    """A spatial pack folder (model.onnx, card.json) the agent loads like a shipped one."""
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(plumbing_model(), str(folder / "model.onnx"))
    card = ModelCard(
        name="plumbing",
        version="0.0.1",
        role="spatial",
        onnx="model.onnx",
        input=InputSpec(size=128, scale=3.0, center_y=0.55),
        threshold=threshold,
        threshold_note="plumbing only: no meaning",
    )
    write_card(folder, card)
    return folder
