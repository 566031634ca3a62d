"""Device memory, streams and device queries for the TensorRT runtime, without torch.

Backends, tried in this order (all imported lazily, only when TensorRT is asked for):

1. cuda-python's runtime bindings, `cuda.bindings.runtime` (cuda-python >= 12.6, what
   NVIDIA's TensorRT samples use),
2. the same API under its older name `cuda.cudart` (cuda-python < 12.6),
3. pycuda (`pycuda.driver`), for hosts where that is what is installed (JetPack images).

Every cuda-python call returns a tuple whose first item is a `cudaError_t`; `_check` turns a
failure into CudaUnavailable/CudaError with the error's name and NVIDIA's description, e.g.
"cudaGetDeviceCount returned cudaErrorInsufficientDriver (CUDA driver version is insufficient
for CUDA runtime version)". That text is what `unavailable_reason()` shows.

Where this ran: the import fallbacks, the error formatting and the "no driver" answer of the
real cuda-python 13 ran on the CPU-only machine (tests/engines/runtime/test_cuda_backend.py);
allocation, copies and streams need a GPU and only run there.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np


class CudaUnavailable(RuntimeError):
    """No usable CUDA library or device; the message is one sentence saying why."""


class CudaError(RuntimeError):
    """A CUDA call failed on a machine that has a device."""


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    compute_capability: tuple[int, int]
    total_memory: int

    @property
    def sm(self) -> str:
        return f"{self.compute_capability[0]}.{self.compute_capability[1]}"


class CudaRuntimeBackend:
    """cuda-python's CUDA runtime API (cudart)."""

    def __init__(self, rt: Any, module_name: str) -> None:
        self.rt = rt
        self.name = f"cuda-python ({module_name})"

    # -- error handling -------------------------------------------------------------------
    def _describe(self, err: Any) -> str:
        name = getattr(err, "name", None) or str(err)
        try:
            _, text = self.rt.cudaGetErrorString(err)
            text = text.decode() if isinstance(text, bytes) else str(text)
        except Exception:  # describing an error must never raise a second one
            text = ""
        return f"{name} ({text})" if text else name

    def _check(self, call: str, result: Any, exc: type[Exception] = CudaError) -> Any:
        if not isinstance(result, tuple):
            result = (result,)
        err, values = result[0], result[1:]
        if err != self.rt.cudaError_t.cudaSuccess:
            raise exc(f"{call} returned {self._describe(err)}")
        if not values:
            return None
        return values[0] if len(values) == 1 else values

    # -- devices --------------------------------------------------------------------------
    def device_count(self) -> int:
        try:
            result = self.rt.cudaGetDeviceCount()
        except Exception as exc:  # e.g. libcudart missing on a broken install
            raise CudaUnavailable(
                f"no CUDA device: cudaGetDeviceCount failed ({exc.__class__.__name__}: {exc})"
            ) from exc
        try:
            return int(self._check("cudaGetDeviceCount", result, CudaUnavailable))
        except CudaUnavailable as exc:
            raise CudaUnavailable(f"no CUDA device: {exc}") from None

    def device_info(self, device: int) -> DeviceInfo:
        prop = self._check("cudaGetDeviceProperties", self.rt.cudaGetDeviceProperties(device))
        name = prop.name
        if isinstance(name, bytes):
            name = name.split(b"\0", 1)[0].decode(errors="replace")
        return DeviceInfo(
            index=device,
            name=str(name).strip(),
            compute_capability=(int(prop.major), int(prop.minor)),
            total_memory=int(getattr(prop, "totalGlobalMem", 0)),
        )

    @contextlib.contextmanager
    def activate(self, device: int) -> Iterator[None]:
        # The runtime API keeps a current device per thread and uses its primary context,
        # which is also what TensorRT uses: select it in whichever thread calls us.
        self._check("cudaSetDevice", self.rt.cudaSetDevice(device))
        yield

    # -- memory and streams ---------------------------------------------------------------
    def malloc(self, nbytes: int) -> int:
        return int(self._check("cudaMalloc", self.rt.cudaMalloc(max(int(nbytes), 1))))

    def free(self, ptr: int) -> None:
        self._check("cudaFree", self.rt.cudaFree(ptr))

    def host_empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A page-locked host array (async copies need it to really be async)."""
        dtype = np.dtype(dtype)
        nbytes = max(int(np.prod(shape)) * dtype.itemsize, 1)
        ptr = int(self._check("cudaMallocHost", self.rt.cudaMallocHost(nbytes)))
        raw = (ctypes.c_uint8 * nbytes).from_address(ptr)
        return np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape))).reshape(shape)

    def free_host(self, array: np.ndarray) -> None:
        self._check("cudaFreeHost", self.rt.cudaFreeHost(array.ctypes.data))

    def create_stream(self) -> Any:
        return self._check("cudaStreamCreate", self.rt.cudaStreamCreate())

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def destroy_stream(self, stream: Any) -> None:
        self._check("cudaStreamDestroy", self.rt.cudaStreamDestroy(stream))

    def htod_async(self, device_ptr: int, host: np.ndarray, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(
            "cudaMemcpyAsync(host->device)",
            self.rt.cudaMemcpyAsync(device_ptr, host.ctypes.data, host.nbytes, kind, stream),
        )

    def dtoh_async(self, host: np.ndarray, device_ptr: int, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(
            "cudaMemcpyAsync(device->host)",
            self.rt.cudaMemcpyAsync(host.ctypes.data, device_ptr, host.nbytes, kind, stream),
        )

    def synchronize(self, stream: Any) -> None:
        self._check("cudaStreamSynchronize", self.rt.cudaStreamSynchronize(stream))


class PyCudaBackend:
    """pycuda's driver API. Contexts are per thread: push the device's primary context
    (the one TensorRT shares with the runtime API) around every use."""

    name = "pycuda"

    def __init__(self, driver: Any) -> None:
        self.drv = driver
        self._host_arrays: dict[int, Any] = {}
        self._allocations: dict[int, Any] = {}
        self._contexts: dict[int, Any] = {}

    def device_count(self) -> int:
        try:
            self.drv.init()
            return int(self.drv.Device.count())
        except Exception as exc:  # pycuda raises its own LogicError/RuntimeError types
            raise CudaUnavailable(
                f"no CUDA device: pycuda could not initialise CUDA ({exc})"
            ) from exc

    def device_info(self, device: int) -> DeviceInfo:
        dev = self.drv.Device(device)
        major, minor = dev.compute_capability()
        return DeviceInfo(
            device, str(dev.name()).strip(), (int(major), int(minor)), int(dev.total_memory())
        )

    @contextlib.contextmanager
    def activate(self, device: int) -> Iterator[None]:
        ctx = self._contexts.get(device)
        if ctx is None:
            ctx = self._contexts[device] = self.drv.Device(device).retain_primary_context()
        ctx.push()
        try:
            yield
        finally:
            self.drv.Context.pop()

    def malloc(self, nbytes: int) -> int:
        alloc = self.drv.mem_alloc(max(int(nbytes), 1))
        self._allocations[int(alloc)] = alloc  # keep the owner alive
        return int(alloc)

    def free(self, ptr: int) -> None:
        alloc = self._allocations.pop(int(ptr), None)
        if alloc is not None:
            alloc.free()

    def host_empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        array = self.drv.pagelocked_empty(shape, np.dtype(dtype))
        self._host_arrays[array.ctypes.data] = array
        return array

    def free_host(self, array: np.ndarray) -> None:
        owner = self._host_arrays.pop(array.ctypes.data, None)
        if owner is not None and hasattr(owner, "base") and hasattr(owner.base, "free"):
            owner.base.free()

    def create_stream(self) -> Any:
        return self.drv.Stream()

    def stream_handle(self, stream: Any) -> int:
        return int(stream.handle)

    def destroy_stream(self, stream: Any) -> None:
        pass  # released with the Python object

    def htod_async(self, device_ptr: int, host: np.ndarray, stream: Any) -> None:
        self.drv.memcpy_htod_async(device_ptr, host, stream)

    def dtoh_async(self, host: np.ndarray, device_ptr: int, stream: Any) -> None:
        self.drv.memcpy_dtoh_async(host, device_ptr, stream)

    def synchronize(self, stream: Any) -> None:
        stream.synchronize()


_RUNTIME_MODULES = ("cuda.bindings.runtime", "cuda.cudart")


def load_cuda() -> CudaRuntimeBackend | PyCudaBackend:
    """The first CUDA binding that imports, or CudaUnavailable naming what was tried."""
    failures: list[str] = []
    for module_name in _RUNTIME_MODULES:
        try:
            rt = importlib.import_module(module_name)
        except Exception as exc:  # ImportError, or OSError from a missing libcudart
            failures.append(f"{module_name}: {exc.__class__.__name__}: {exc}")
            continue
        return CudaRuntimeBackend(rt, module_name)
    try:
        driver = importlib.import_module("pycuda.driver")
    except Exception as exc:
        failures.append(f"pycuda.driver: {exc.__class__.__name__}: {exc}")
    else:
        return PyCudaBackend(driver)
    raise CudaUnavailable(
        "no CUDA Python binding can be imported (install cuda-python matching the CUDA "
        'major version of the driver, e.g. `pip install "cuda-python>=12.6,<13"`): '
        + "; ".join(failures)
    )


def visible_device(device: int = 0) -> tuple[CudaRuntimeBackend | PyCudaBackend, DeviceInfo]:
    """The backend and the device to use, or CudaUnavailable saying why there is none."""
    cuda = load_cuda()
    count = cuda.device_count()
    if count == 0:
        raise CudaUnavailable("no CUDA device: the driver reports 0 devices")
    if not 0 <= device < count:
        raise CudaUnavailable(f"no CUDA device {device}: only {count} visible")
    return cuda, cuda.device_info(device)
