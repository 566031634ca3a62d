"""unavailable_reason and create_engine: the real answers on this GPU-less machine, and the
branches behind them with faked modules."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from engines.runtime import EngineUnavailable, create_engine
from engines.runtime import tensorrt as trt_runtime
from engines.runtime.onnxruntime import OnnxRuntimeEngine
from tests.engines.runtime import fakes
from tests.engines.runtime.tiny_models import random_crops


def _tensorrt_importable() -> bool:
    try:
        import tensorrt  # noqa: F401
    except Exception:
        return False
    return True


@pytest.mark.skipif(_tensorrt_importable(), reason="tensorrt imports on this machine")
def test_reason_names_tensorrt_when_it_cannot_be_imported():
    reason = trt_runtime.unavailable_reason()
    assert reason is not None
    assert reason.startswith("the tensorrt package cannot be imported (")
    assert "Error" in reason  # the exception class, e.g. ModuleNotFoundError / ImportError
    assert "\n" not in reason


@pytest.mark.skipif(_tensorrt_importable(), reason="tensorrt imports on this machine")
def test_create_engine_tensorrt_raises_with_the_cause(tiny_pack):
    with pytest.raises(EngineUnavailable) as info:
        create_engine(tiny_pack, "tensorrt")
    message = str(info.value)
    assert "runtime tensorrt requested for tiny@1.0.0" in message
    assert "tensorrt package cannot be imported" in message


def test_create_engine_auto_falls_back_to_onnxruntime(tiny_pack, monkeypatch):
    monkeypatch.setattr(trt_runtime, "unavailable_reason", lambda *a: "no CUDA device: test")
    engine = create_engine(tiny_pack, "auto")
    assert isinstance(engine, OnnxRuntimeEngine)
    assert engine.runtime == "onnxruntime"
    logits = engine.infer(random_crops(3))
    assert logits.shape == (3,) and logits.dtype == np.float32


def test_tensorrt_engine_constructor_raises_unavailable_here(tiny_pack, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    with pytest.raises(EngineUnavailable, match="tensorrt package cannot be imported"):
        trt_runtime.TensorRTEngine(tiny_pack, max_batch=4, cache_dir="unused")


def test_reason_when_tensorrt_imports_but_cuda_reports_no_driver(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", fakes.make_fake_tensorrt())
    cudart = fakes.FakeCudart(count_error=fakes.cudaError_t.cudaErrorInsufficientDriver)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", cudart)
    reason = trt_runtime.unavailable_reason()
    assert reason == (
        "no CUDA device: cudaGetDeviceCount returned cudaErrorInsufficientDriver "
        "(CUDA driver version is insufficient for CUDA runtime version)"
    )


@pytest.mark.skipif(
    importlib.util.find_spec("cuda") is None or importlib.util.find_spec("cuda.bindings") is None,
    reason="cuda-python is not installed",
)
def test_reason_with_the_real_cuda_python_on_a_machine_without_gpu(monkeypatch):
    """The real cuda-python binding, no driver here: a clean one-sentence answer."""
    from cuda.bindings import runtime as rt

    err, _ = rt.cudaGetDeviceCount()
    if err == rt.cudaError_t.cudaSuccess:
        pytest.skip("this machine has a CUDA device")
    monkeypatch.setitem(sys.modules, "tensorrt", fakes.make_fake_tensorrt())
    reason = trt_runtime.unavailable_reason()
    assert reason.startswith("no CUDA device: cudaGetDeviceCount returned cudaError")
    assert "(" in reason and "\n" not in reason


def test_reason_when_no_cuda_binding_is_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", fakes.make_fake_tensorrt())
    for name in ("cuda.bindings.runtime", "cuda.cudart", "pycuda.driver"):
        monkeypatch.setitem(sys.modules, name, None)
    reason = trt_runtime.unavailable_reason()
    assert reason.startswith("no CUDA Python binding can be imported")
    assert "cuda-python" in reason and "pycuda.driver" in reason


def test_reason_is_none_with_tensorrt_and_a_device(fake_gpu):
    assert trt_runtime.unavailable_reason() is None
    cudart = fake_gpu[1]
    cudart.devices = 0
    assert trt_runtime.unavailable_reason() == "no CUDA device: the driver reports 0 devices"


def test_create_engine_auto_picks_tensorrt_when_available(fake_gpu, tiny_pack, tmp_path):
    engine = create_engine(tiny_pack, "auto", max_batch=4, cache_dir=str(tmp_path / "cache"))
    assert isinstance(engine, trt_runtime.TensorRTEngine)
    assert engine.runtime == "tensorrt" and engine.name == "tiny@1.0.0"
    engine.close()


def test_runtime_modules_do_not_import_torch():
    """Run time never imports torch (checked in a fresh interpreter)."""
    import subprocess

    code = (
        "import sys; import engines.runtime, engines.runtime.tensorrt, "
        "engines.runtime.engine_cache, engines.runtime.cuda_backend, engines.runtime.onnxruntime; "
        "engines.runtime.tensorrt.unavailable_reason(); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "False"
