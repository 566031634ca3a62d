"""Tiny ONNX model packs with known arithmetic, for testing the plumbing around models."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

from engines.registry import AlertThreshold, Calibration, InputSpec, ModelCard, write_card


def temporal_plumbing_pack(folder: Path, frames: int = 8, size: int = 128, fusion: dict | None = None,
                           calibration_bias: float = 0.0, alert_threshold: float | None = None) -> Path:
    """logit = (mean of the last crop - mean of the first crop) / 10: 0 for a still face."""
    nodes = [
        helper.make_node("Cast", ["crops"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["f"], ["per_frame"], keepdims=0, axes=[2, 3, 4]),
        helper.make_node("Gather", ["per_frame", "last"], ["l"], axis=1),
        helper.make_node("Gather", ["per_frame", "first"], ["fst"], axis=1),
        helper.make_node("Sub", ["l", "fst"], ["d"]),
        helper.make_node("Div", ["d", "ten"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, "temporal_plumbing",
        [helper.make_tensor_value_info("crops", TensorProto.UINT8, ["N", frames, size, size, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N"])],
        initializer=[
            helper.make_tensor("last", TensorProto.INT64, [], [frames - 1]),
            helper.make_tensor("first", TensorProto.INT64, [], [0]),
            helper.make_tensor("ten", TensorProto.FLOAT, [], [10.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, folder / "model.onnx")
    card = ModelCard(
        name="temporal-plumbing", version="0", role="temporal", onnx="model.onnx",
        input=InputSpec(size=size, scale=3.0, center_y=0.55, frames=frames, layout="NTHWC"),
        calibration=Calibration(bias=calibration_bias),
        alert_threshold=None if alert_threshold is None else AlertThreshold(
            value=alert_threshold, target_alerts_per_hour=0.1, method="test"),
        training={"fusion": fusion or {"weights": {"spatial": 1.0, "temporal": 1.0}, "bias": 0.0}},
    )
    write_card(folder, card)
    return folder


def installed_deep_pack():
    """The shipped deep pack, skipping (saying why) where its backbone is not installed."""
    import pytest

    from engines.backbone import BackboneError, locate
    from engines.registry import resolve_pack

    pack = resolve_pack("deep-clip")
    try:
        locate(pack.card.backbone)
    except BackboneError as exc:
        pytest.skip(f"backbone not installed here ({exc}); deploy/setup.sh installs it")
    return pack
