"""CUDA binding selection and error reporting; pinned-buffer plumbing through a fake cudart."""

from __future__ import annotations

import importlib.util
import sys
import types

import numpy as np
import pytest

from engines.runtime import cuda_backend
from engines.runtime.cuda_backend import (
    CudaError,
    CudaRuntimeBackend,
    CudaUnavailable,
    PyCudaBackend,
    load_cuda,
    visible_device,
)
from tests.engines.runtime import fakes


def test_prefers_cuda_bindings_runtime(monkeypatch):
    cudart = fakes.FakeCudart()
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", cudart)
    backend = load_cuda()
    assert isinstance(backend, CudaRuntimeBackend) and backend.rt is cudart
    assert backend.name == "cuda-python (cuda.bindings.runtime)"


def test_falls_back_to_old_cudart_name_then_pycuda(monkeypatch):
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", None)
    old = fakes.FakeCudart()
    monkeypatch.setitem(sys.modules, "cuda.cudart", old)
    assert load_cuda().name == "cuda-python (cuda.cudart)"

    monkeypatch.setitem(sys.modules, "cuda.cudart", None)
    driver = types.ModuleType("pycuda.driver")
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    assert isinstance(load_cuda(), PyCudaBackend)


def test_no_binding_names_every_attempt(monkeypatch):
    for name in cuda_backend._RUNTIME_MODULES + ("pycuda.driver",):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(CudaUnavailable) as info:
        load_cuda()
    text = str(info.value)
    for name in ("cuda.bindings.runtime", "cuda.cudart", "pycuda.driver"):
        assert name in text


def test_device_info_and_zero_devices(monkeypatch):
    cudart = fakes.FakeCudart(name="Orin", cc=(8, 7))
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", cudart)
    backend, info = visible_device(0)
    assert (info.name, info.compute_capability, info.sm) == ("Orin", (8, 7), "8.7")
    with pytest.raises(CudaUnavailable, match="no CUDA device 1: only 1 visible"):
        visible_device(1)
    cudart.devices = 0
    with pytest.raises(CudaUnavailable, match="reports 0 devices"):
        visible_device(0)


def test_failed_call_raises_with_name_and_description():
    class OutOfMemory(fakes.FakeCudart):
        def cudaMalloc(self, nbytes):
            return fakes.cudaError_t.cudaErrorMemoryAllocation, None

    backend = CudaRuntimeBackend(OutOfMemory(), "fake")
    with pytest.raises(
        CudaError, match=r"cudaMalloc returned cudaErrorMemoryAllocation \(out of memory\)"
    ):
        backend.malloc(1 << 20)


def test_pinned_buffers_and_copies_round_trip():
    backend = CudaRuntimeBackend(fakes.FakeCudart(), "fake")
    host = backend.host_empty((3, 4), np.float32)
    assert host.shape == (3, 4) and host.dtype == np.float32
    host[...] = np.arange(12, dtype=np.float32).reshape(3, 4)
    device = backend.malloc(host.nbytes)
    stream = backend.create_stream()
    backend.htod_async(device, host, stream)
    back = backend.host_empty((3, 4), np.float32)
    backend.dtoh_async(back, device, stream)
    backend.synchronize(stream)
    np.testing.assert_array_equal(back, host)
    assert backend.stream_handle(stream) == 7


@pytest.mark.skipif(
    importlib.util.find_spec("cuda") is None or importlib.util.find_spec("cuda.bindings") is None,
    reason="cuda-python is not installed",
)
def test_real_cuda_python_without_a_gpu_says_so():
    backend = load_cuda()
    assert isinstance(backend, CudaRuntimeBackend)
    try:
        count = backend.device_count()
    except CudaUnavailable as exc:
        assert str(exc).startswith("no CUDA device: cudaGetDeviceCount returned cudaError")
    else:
        pytest.skip(f"this machine has {count} CUDA device(s)")
