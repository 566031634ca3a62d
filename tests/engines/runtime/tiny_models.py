"""Tiny model packs built with onnx.helper: the Verity contract (uint8 NHWC BGR `crops` with a
dynamic batch axis in, float32 `logits` [N] out, normalisation inside the graph), small
enough to build and run in milliseconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from engines.registry import Calibration, InputSpec, ModelCard, ModelPack, resolve_pack, write_card

OPSET = 17


def _const(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def tiny_model(
    *,
    size: int = 16,
    frames: int = 1,
    transpose_first: bool = False,
    fixed_batch: int | None = None,
    seed: int = 0,
    logit_scale: float = 3.0,
    extra_op: str | None = None,
) -> onnx.ModelProto:
    """A 1-conv classifier. transpose_first puts Transpose before the uint8 Cast (what a
    PyTorch `x.permute(...).float()` export gives; TensorRT rejects it)."""
    rng = np.random.default_rng(seed)
    batch: int | str = fixed_batch if fixed_batch is not None else "N"
    if frames > 1:
        in_shape = [batch, frames, size, size, 3]
        perm = [0, 1, 4, 2, 3]
    else:
        in_shape = [batch, size, size, 3]
        perm = [0, 3, 1, 2]
    nodes = []
    if transpose_first:
        nodes += [
            helper.make_node("Transpose", ["crops"], ["nchw_u8"], perm=perm),
            helper.make_node("Cast", ["nchw_u8"], ["nchw"], to=TensorProto.FLOAT),
        ]
    else:
        nodes += [
            helper.make_node("Cast", ["crops"], ["nhwc"], to=TensorProto.FLOAT),
            helper.make_node("Transpose", ["nhwc"], ["nchw"], perm=perm),
        ]
    x = "nchw"
    if frames > 1:  # average the frames: [N, T, 3, H, W] -> [N, 3, H, W]
        nodes.append(helper.make_node("ReduceMean", [x], ["frames_mean"], axes=[1], keepdims=0))
        x = "frames_mean"
    channels = 4
    inits = [
        _const("mean", (np.array([104.0, 117.0, 123.0], np.float32) * 1.0).reshape(1, 3, 1, 1)),
        _const("std", np.array([57.0, 57.0, 58.0], np.float32).reshape(1, 3, 1, 1)),
        _const("conv_w", (rng.standard_normal((channels, 3, 3, 3)) * 0.3).astype(np.float32)),
        _const("conv_b", (rng.standard_normal(channels) * 0.1).astype(np.float32)),
        _const("fc_w", (rng.standard_normal((1, channels)) * logit_scale).astype(np.float32)),
        _const("fc_b", np.array([-0.5], np.float32)),
        _const("flat", np.array([-1], np.int64)),
    ]
    nodes += [
        helper.make_node("Sub", [x, "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["normed"]),
        helper.make_node(
            "Conv",
            ["normed", "conv_w", "conv_b"],
            ["conv"],
            pads=[1, 1, 1, 1],
            strides=[2, 2],
            kernel_shape=[3, 3],
        ),
        helper.make_node("Relu", ["conv"], ["act"]),
        helper.make_node("GlobalAveragePool", ["act"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
        helper.make_node("Gemm", ["features", "fc_w", "fc_b"], ["scores"], transB=1),
        helper.make_node("Reshape", ["scores", "flat"], ["logits_raw" if extra_op else "logits"]),
    ]
    if extra_op:
        nodes.append(helper.make_node(extra_op, ["logits_raw"], ["logits"]))
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("crops", TensorProto.UINT8, in_shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # readable by every ONNX Runtime and TensorRT 10 parser
    onnx.checker.check_model(model)
    return model


def write_pack(
    folder: Path,
    model: onnx.ModelProto | None = None,
    *,
    name: str = "tiny",
    version: str = "1.0.0",
    size: int = 16,
    frames: int = 1,
    threshold: float = 0.5,
    calibration: Calibration | None = None,
    **model_kwargs,
) -> ModelPack:
    """Write a pack folder (model.onnx + card.json) and load it the way the agent does."""
    folder.mkdir(parents=True, exist_ok=True)
    model = model or tiny_model(size=size, frames=frames, **model_kwargs)
    onnx.save(model, str(folder / "model.onnx"))
    card = ModelCard(
        name=name,
        version=version,
        role="temporal" if frames > 1 else "spatial",
        onnx="model.onnx",
        input=InputSpec(
            size=size,
            scale=2.2,
            center_y=0.4,
            frames=frames,
            layout="NTHWC" if frames > 1 else "NHWC",
        ),
        calibration=calibration or Calibration(),
        threshold=threshold,
    )
    write_card(folder, card)
    return resolve_pack(folder)


def random_crops(n: int, size: int = 16, frames: int = 1, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (n, frames, size, size, 3) if frames > 1 else (n, size, size, 3)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)
