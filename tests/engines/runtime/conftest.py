"""Fixtures for the runtime tests: tiny model packs, and a faked GPU stack (see fakes.py)."""

from __future__ import annotations

import sys

import pytest

from engines.runtime import tensorrt as trt_runtime
from tests.engines.runtime import fakes
from tests.engines.runtime.tiny_models import write_pack


@pytest.fixture
def tiny_pack(tmp_path):
    return write_pack(tmp_path / "packs" / "tiny")


@pytest.fixture
def fake_gpu(monkeypatch):
    """`tensorrt` and `cuda.bindings.runtime` replaced by the fakes; yields (trt, cudart)."""
    trt = fakes.make_fake_tensorrt()
    cudart = fakes.FakeCudart()
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", cudart)
    # The process-wide TensorRT logger subclasses the (fake) module's ILogger.
    monkeypatch.setattr(trt_runtime, "_LOGGER", None)
    yield trt, cudart
