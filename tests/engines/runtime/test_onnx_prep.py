"""ONNX checks and the uint8 Cast-first rewrite, verified with ONNX Runtime."""

from __future__ import annotations

import importlib.util

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from engines.runtime.onnx_prep import (
    cast_uint8_inputs_first,
    prepare_for_tensorrt,
    tensorrt_compat_issues,
)
from tests.engines.runtime.tiny_models import random_crops, tiny_model


def _run(model: onnx.ModelProto, crops: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"crops": crops})[0]


def test_contract_model_has_no_issues():
    assert tensorrt_compat_issues(tiny_model()) == []
    assert tensorrt_compat_issues(tiny_model(frames=4)) == []


def test_transpose_before_cast_is_flagged_as_fixable():
    (issue,) = tensorrt_compat_issues(tiny_model(transpose_first=True))
    assert "feeds ['Transpose']" in issue and "cast_uint8_inputs_first() can fix" in issue


@pytest.mark.parametrize("frames", [1, 4])
def test_rewrite_keeps_outputs_identical(frames):
    model = tiny_model(transpose_first=True, frames=frames)
    fixed, notes = cast_uint8_inputs_first(model)
    assert len(notes) == 1 and "values are unchanged" in notes[0]
    onnx.checker.check_model(fixed, full_check=True)
    assert tensorrt_compat_issues(fixed) == []
    first = fixed.graph.node[0]
    assert first.op_type == "Cast" and first.input[0] == "crops"
    crops = random_crops(7, frames=frames)
    np.testing.assert_array_equal(_run(fixed, crops), _run(model, crops))
    # The source model is untouched.
    assert model.graph.node[0].op_type == "Transpose"


def test_rewrite_is_a_no_op_for_good_models():
    model = tiny_model()
    fixed, notes = cast_uint8_inputs_first(model)
    assert notes == [] and fixed == model
    data = model.SerializeToString()
    assert prepare_for_tensorrt(data) == (data, [])


def test_rewrite_refuses_paths_that_compute_on_uint8():
    graph = helper.make_graph(
        [
            helper.make_node("Transpose", ["crops"], ["t"], perm=[0, 3, 1, 2]),
            helper.make_node("Add", ["t", "one"], ["u"]),  # uint8 arithmetic wraps around
            helper.make_node("Cast", ["u"], ["f"], to=TensorProto.FLOAT),
            helper.make_node("ReduceMean", ["f"], ["logits"], axes=[1, 2, 3], keepdims=0),
        ],
        "g",
        [helper.make_tensor_value_info("crops", TensorProto.UINT8, ["N", 4, 4, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N"])],
        initializer=[helper.make_tensor("one", TensorProto.UINT8, [], [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    issues = tensorrt_compat_issues(model)
    assert any("cast the input to float first in the model" in i for i in issues)
    with pytest.raises(ValueError, match="not data movement"):
        cast_uint8_inputs_first(model)


def test_contract_violations_are_named():
    issues = tensorrt_compat_issues(tiny_model(fixed_batch=1))
    assert any("fixed batch size 1" in i for i in issues)

    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["x"], ["y"], axes=[1, 2, 3], keepdims=0)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "H", 8, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, ["N"])],
    )
    issues = " | ".join(tensorrt_compat_issues(helper.make_model(graph)))
    assert "named 'x'" in issues and "is FLOAT;" in issues and "dynamic crop dimensions" in issues
    assert "named 'y'" in issues and "expected float32 logits" in issues


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torch_export_of_permute_then_float_needs_the_rewrite(tmp_path):
    """What a real PyTorch export (dynamo=False) of the usual forward() produces."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self, permute_first: bool):
            super().__init__()
            self.permute_first = permute_first
            self.conv = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
            self.fc = torch.nn.Linear(4, 1)

        def forward(self, crops):
            if self.permute_first:
                x = crops.permute(0, 3, 1, 2).float()
            else:
                x = crops.float().permute(0, 3, 1, 2)
            x = torch.relu(self.conv(x / 255.0 - 0.5)).mean((2, 3))
            return self.fc(x).squeeze(1)

    crops = random_crops(2)
    for permute_first in (True, False):
        path = tmp_path / f"net_{permute_first}.onnx"
        torch.onnx.export(
            Net(permute_first).eval(),
            (torch.from_numpy(crops),),
            str(path),
            input_names=["crops"],
            output_names=["logits"],
            dynamic_axes={"crops": {0: "N"}, "logits": {0: "N"}},
            dynamo=False,
            opset_version=17,
        )
        issues = tensorrt_compat_issues(path)
        if permute_first:
            assert len(issues) == 1 and "Transpose" in issues[0]
            fixed, _ = cast_uint8_inputs_first(path)
            assert tensorrt_compat_issues(fixed) == []
            np.testing.assert_array_equal(_run(fixed, crops), _run(onnx.load(str(path)), crops))
        else:
            assert issues == []
