"""Pure helpers of the TensorRT runtime: profile shapes, sample shapes, batch splitting,
the FP16 decision, parser-error formatting."""

from __future__ import annotations

import pytest

from engines.registry import InputSpec
from engines.runtime.engine_cache import EngineBuildError
from engines.runtime.tensorrt import (
    format_parser_errors,
    has_fast_fp16,
    optimization_profile_shapes,
    sample_shape_for,
    split_batches,
)

SPATIAL = InputSpec(size=224, scale=2.2, center_y=0.4)
TEMPORAL = InputSpec(size=112, scale=2.2, center_y=0.4, frames=8, layout="NTHWC")


def test_profile_shapes_spatial():
    assert optimization_profile_shapes((224, 224, 3), 32) == (
        (1, 224, 224, 3),
        (32, 224, 224, 3),
        (32, 224, 224, 3),
    )


def test_profile_shapes_temporal_and_opt_batch():
    mn, opt, mx = optimization_profile_shapes([8, 112, 112, 3], 16, opt_batch=4)
    assert mn == (1, 8, 112, 112, 3) and opt == (4, 8, 112, 112, 3) and mx == (16, 8, 112, 112, 3)


def test_profile_shapes_batch_one():
    assert optimization_profile_shapes((64, 64, 3), 1) == ((1, 64, 64, 3),) * 3


@pytest.mark.parametrize(
    "shape, max_batch, opt",
    [((224, 224, 3), 0, None), ((-1, 224, 3), 8, None), ((), 8, None), ((8, 8, 3), 4, 5)],
)
def test_profile_shapes_reject_bad_input(shape, max_batch, opt):
    with pytest.raises(ValueError):
        optimization_profile_shapes(shape, max_batch, opt_batch=opt)


def test_sample_shape_from_network_dims():
    assert sample_shape_for((-1, 224, 224, 3), SPATIAL) == (224, 224, 3)
    assert sample_shape_for((-1, -1, -1, 3), SPATIAL) == (224, 224, 3)  # filled from the card
    assert sample_shape_for((-1, 8, 112, 112, 3), TEMPORAL) == (8, 112, 112, 3)


def test_sample_shape_errors_name_the_problem():
    with pytest.raises(EngineBuildError, match="batch axis is fixed at 1"):
        sample_shape_for((1, 224, 224, 3), SPATIAL)
    with pytest.raises(EngineBuildError, match="axis 1 is 256, the model card says 224"):
        sample_shape_for((-1, 256, 256, 3), SPATIAL)
    with pytest.raises(EngineBuildError, match="rank 4"):
        sample_shape_for((-1, 112, 112, 3), TEMPORAL)


def test_split_batches():
    assert split_batches(0, 32) == []
    assert split_batches(32, 32) == [(0, 32)]
    assert split_batches(70, 32) == [(0, 32), (32, 64), (64, 70)]
    assert split_batches(3, 1) == [(0, 1), (1, 2), (2, 3)]
    with pytest.raises(ValueError):
        split_batches(3, 0)


def test_fast_fp16_rule():
    assert has_fast_fp16((8, 7))  # Orin
    assert has_fast_fp16((9, 0))  # H100
    assert has_fast_fp16((7, 5))  # T4
    assert not has_fast_fp16((6, 1))  # GTX 10xx: FP16 at 1/64 rate
    assert not has_fast_fp16((5, 2))

    class Builder:
        platform_has_fast_fp16 = False

    assert not has_fast_fp16((9, 0), Builder())  # TensorRT's own answer wins when offered


class _Err10:
    """TensorRT 10 ParserError."""

    def __init__(self, desc, name, op):
        self._d, self._n, self._o = desc, name, op

    def desc(self):
        return self._d

    def code(self):
        return "ErrorCode.UNSUPPORTED_NODE"

    def node_name(self):
        return self._n

    def node_operator(self):
        return self._o


class _Err8:
    """TensorRT 8 ParserError: no node_name()/node_operator()."""

    def desc(self):
        return "Assertion failed: inputs.at(0).isInt32()"

    def code(self):
        return "ErrorCode.INVALID_NODE"

    def node(self):
        return 12


class _Parser:
    def __init__(self, errors):
        self.errors = errors

    @property
    def num_errors(self):
        return len(self.errors)

    def get_error(self, i):
        return self.errors[i]


def test_parser_errors_are_listed_one_per_line():
    text = format_parser_errors(
        "/packs/x/model.onnx",
        _Parser([_Err10("No importer registered for op: Foo", "/blocks.3/Foo", "Foo"), _Err8()]),
    )
    lines = text.splitlines()
    assert lines[0] == "TensorRT could not parse /packs/x/model.onnx (2 error(s)):"
    assert lines[1] == (
        "  1. No importer registered for op: Foo (ErrorCode.UNSUPPORTED_NODE) "
        "[node /blocks.3/Foo, op Foo]"
    )
    assert (
        lines[2]
        == "  2. Assertion failed: inputs.at(0).isInt32() (ErrorCode.INVALID_NODE) [node #12]"
    )
    assert "Cast directly" in lines[3]
