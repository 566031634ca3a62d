"""A deep pack's head as an ONNX graph: chosen layers' token summaries -> one fake logit.

The head reads, for each layer it names, the class token and/or the mean of the patch tokens
of the backbone's residual stream (engines.train.deep_features stores the same summaries),
standardises them with the training set's statistics and applies a small classifier (linear,
or one hidden ReLU layer). The standardisation is folded into the first layer's weights. Built with onnx.helper from numpy arrays: no torch
is needed to export or to run it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.backbone import IR_VERSION, OPSET

TOKENS = ("cls", "mean")


@dataclass(frozen=True)
class HeadLayout:
    """Which summaries the head reads: layers (readable names, backbone order) x tokens."""

    layers: tuple[str, ...]
    tokens: tuple[str, ...]

    def __post_init__(self) -> None:
        bad = [t for t in self.tokens if t not in TOKENS]
        if bad or not self.tokens or not self.layers:
            raise ValueError(f"head layout needs layers and tokens from {TOKENS}, got "
                             f"{self.layers} x {self.tokens}")

    def select(self, features: dict[str, np.ndarray], layer_names: list[str]) -> np.ndarray:
        """(N, D) from stored summaries {"cls", "mean"}: (N, all layers, width), in the order
        the graph concatenates them (per layer: its tokens in `tokens` order)."""
        index = [layer_names.index(name) for name in self.layers]
        parts = [features[token][:, i].astype(np.float32) for i in index for token in self.tokens]
        return np.concatenate(parts, axis=1)


def export_head(path: Path, layout: HeadLayout, layers: list[tuple[np.ndarray, np.ndarray]],
                mean: np.ndarray, std: np.ndarray, width: int) -> Path:
    """logit = MLP((x - mean) / std), x the layout's concatenated summaries: `layers` are
    (weights (in, out), bias (out,)) pairs with ReLU between them (one pair: linear). The
    standardisation is folded into the first layer's weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    first_w = np.asarray(layers[0][0], np.float64) / np.asarray(std, np.float64)[:, None]
    first_b = np.asarray(layers[0][1], np.float64) - np.asarray(mean, np.float64) @ first_w
    layers = [(first_w, first_b), *layers[1:]]
    nodes, inits, parts = [], [], []
    inits.append(numpy_helper.from_array(np.array([1], np.int64), "head/axis1"))
    if "cls" in layout.tokens:
        inits.append(numpy_helper.from_array(np.array([0], np.int64), "head/zero"))
    if "mean" in layout.tokens:
        inits += [numpy_helper.from_array(np.array([1], np.int64), "head/one"),
                  numpy_helper.from_array(np.array([1 << 30], np.int64), "head/end")]
    for layer in layout.layers:
        for token in layout.tokens:
            out = f"head/{layer}/{token}"
            if token == "cls":
                nodes.append(helper.make_node("Gather", [layer, "head/zero"], [out + "/g"], axis=1))
                nodes.append(helper.make_node("Squeeze", [out + "/g", "head/axis1"], [out]))
            else:
                nodes.append(helper.make_node("Slice", [layer, "head/one", "head/end", "head/axis1"],
                                              [out + "/patches"]))
                nodes.append(helper.make_node("ReduceMean", [out + "/patches"], [out], axes=[1],
                                              keepdims=0))
            parts.append(out)
    nodes.append(helper.make_node("Concat", parts, ["head/x"], axis=1))
    current = "head/x"
    for k, (w, b) in enumerate(layers):
        inits.append(numpy_helper.from_array(np.asarray(w, np.float32).reshape(len(w), -1), f"head/w{k}"))
        inits.append(numpy_helper.from_array(np.asarray(b, np.float32).reshape(-1), f"head/b{k}"))
        nodes += [helper.make_node("MatMul", [current, f"head/w{k}"], [f"head/z{k}"]),
                  helper.make_node("Add", [f"head/z{k}", f"head/b{k}"], [f"head/a{k}"])]
        current = f"head/a{k}"
        if k < len(layers) - 1:
            nodes.append(helper.make_node("Relu", [current], [f"head/r{k}"]))
            current = f"head/r{k}"
    inits.append(numpy_helper.from_array(np.array([-1], np.int64), "head/flat"))
    nodes.append(helper.make_node("Reshape", [current, "head/flat"], ["logits"]))
    graph = helper.make_graph(
        nodes, "verity_deep_head",
        [helper.make_tensor_value_info(layer, TensorProto.FLOAT, ["batch", "tokens", width])
         for layer in layout.layers],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
