"""Stand-ins for `tensorrt` and cuda-python's `cuda.bindings.runtime`, for CPU machines.

They exercise Verity's own orchestration in engines/runtime/tensorrt.py and cuda_backend.py
(cache wiring, build lock, metadata, profile, batch splitting, pointer plumbing, copies,
error paths) with the calls and return conventions of the TensorRT 10 Python API and
cuda-python as documented. They prove nothing about TensorRT itself: a GPU run does that.

- FakeCudart: "device memory" is ordinary host memory; pointers are real addresses, and
  cudaMemcpyAsync is a ctypes.memmove, so wrong sizes or pointers corrupt results visibly.
- fake tensorrt: the "serialized engine" is a header (magic, TensorRT version, profile,
  fp16 flag) plus the ONNX bytes the parser received; executing runs those bytes with ONNX
  Runtime. Like TensorRT, the parser rejects a uint8 input that does not feed a Cast, and
  deserializing a plan from another version logs "version tag does not match" and returns
  None.
"""

from __future__ import annotations

import ctypes
import enum
import json
import types
from dataclasses import dataclass, field

import numpy as np
import onnx
import onnxruntime as ort

# --------------------------------------------------------------------------------------
# cuda-python runtime
# --------------------------------------------------------------------------------------


class cudaError_t(enum.IntEnum):  # the binding's own names
    cudaSuccess = 0
    cudaErrorMemoryAllocation = 2
    cudaErrorInsufficientDriver = 35
    cudaErrorNoDevice = 100


_ERROR_TEXT = {
    0: b"no error",
    2: b"out of memory",
    35: b"CUDA driver version is insufficient for CUDA runtime version",
    100: b"no CUDA-capable device is detected",
}


class cudaMemcpyKind(enum.IntEnum):
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2


@dataclass
class _Props:
    name: bytes
    major: int
    minor: int
    totalGlobalMem: int


class FakeCudart(types.ModuleType):
    """Enough of cuda.bindings.runtime for CudaRuntimeBackend, with tuple returns."""

    cudaError_t = cudaError_t
    cudaMemcpyKind = cudaMemcpyKind

    def __init__(
        self,
        devices: int = 1,
        name: str = "NVIDIA Fake GPU",
        cc=(8, 9),
        count_error: cudaError_t = cudaError_t.cudaSuccess,
    ) -> None:
        super().__init__("cuda.bindings.runtime")
        self.devices, self.gpu_name, self.cc, self.count_error = devices, name, cc, count_error
        self.buffers: dict[int, ctypes.Array] = {}
        self.freed: list[int] = []
        self.copies: list[tuple[str, int]] = []
        self.current_device = 0

    def cudaGetErrorString(self, err):
        return cudaError_t.cudaSuccess, _ERROR_TEXT.get(int(err), b"unknown error")

    def cudaGetDeviceCount(self):
        if self.count_error != cudaError_t.cudaSuccess:
            return self.count_error, None
        return cudaError_t.cudaSuccess, self.devices

    def cudaGetDeviceProperties(self, device):
        return cudaError_t.cudaSuccess, _Props(
            self.gpu_name.encode() + b"\0\0", self.cc[0], self.cc[1], 8 << 30
        )

    def cudaSetDevice(self, device):
        self.current_device = device
        return (cudaError_t.cudaSuccess,)

    def _alloc(self, nbytes):
        buf = (ctypes.c_uint8 * nbytes)()
        ptr = ctypes.addressof(buf)
        self.buffers[ptr] = buf
        return cudaError_t.cudaSuccess, ptr

    def cudaMalloc(self, nbytes):
        return self._alloc(nbytes)

    def cudaMallocHost(self, nbytes):
        return self._alloc(nbytes)

    def _free(self, ptr):
        self.freed.append(int(ptr))
        return (cudaError_t.cudaSuccess,)

    cudaFree = _free
    cudaFreeHost = _free

    def cudaStreamCreate(self):
        return cudaError_t.cudaSuccess, 7  # cudaStream_t converts to int like this

    def cudaStreamDestroy(self, stream):
        return (cudaError_t.cudaSuccess,)

    def cudaStreamSynchronize(self, stream):
        return (cudaError_t.cudaSuccess,)

    def cudaMemcpyAsync(self, dst, src, count, kind, stream):
        ctypes.memmove(int(dst), int(src), int(count))
        self.copies.append((kind.name, int(count)))
        return (cudaError_t.cudaSuccess,)


# --------------------------------------------------------------------------------------
# tensorrt
# --------------------------------------------------------------------------------------

MAGIC = b"FAKETRT1"


class _Severity(enum.IntEnum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


class ILogger:
    Severity = _Severity

    def __init__(self) -> None:
        pass


class DataType(enum.Enum):
    FLOAT = np.float32
    HALF = np.float16
    UINT8 = np.uint8


class TensorIOMode(enum.Enum):
    INPUT = 1
    OUTPUT = 2


class MemoryPoolType(enum.Enum):
    WORKSPACE = 0


class BuilderFlag(enum.Enum):
    FP16 = 0


class NetworkDefinitionCreationFlag(enum.IntEnum):
    EXPLICIT_BATCH = 0


def nptype(dtype: DataType):
    return dtype.value


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, ...]


@dataclass
class _Network:
    inputs: list[_Tensor] = field(default_factory=list)
    outputs: list[_Tensor] = field(default_factory=list)
    onnx_bytes: bytes = b""

    @property
    def num_inputs(self):
        return len(self.inputs)

    @property
    def num_outputs(self):
        return len(self.outputs)

    def get_input(self, i):
        return self.inputs[i]

    def get_output(self, i):
        return self.outputs[i]

    def unmark_output(self, tensor):
        self.outputs.remove(tensor)


@dataclass
class _ParserError:
    message: str
    node_index: int
    op: str

    def desc(self):
        return self.message

    def code(self):
        return "UNSUPPORTED_NODE"

    def node(self):
        return self.node_index

    def node_name(self):
        return f"node_{self.node_index}"

    def node_operator(self):
        return self.op


class OnnxParser:
    # Operators the fake "TensorRT" refuses, so tests can produce parser errors.
    unsupported = {"Erf"}

    def __init__(self, network: _Network, logger) -> None:
        self.network, self.logger, self.errors = network, logger, []

    @property
    def num_errors(self):
        return len(self.errors)

    def get_error(self, i):
        return self.errors[i]

    def parse(self, data: bytes, path: str | None = None) -> bool:
        model = onnx.load_model_from_string(bytes(data))
        inputs = [
            v for v in model.graph.input if v.name not in {i.name for i in model.graph.initializer}
        ]
        for index, node in enumerate(model.graph.node):
            if node.op_type in self.unsupported:
                self.errors.append(
                    _ParserError(
                        f"No importer registered for op: {node.op_type}", index, node.op_type
                    )
                )
            for value in inputs:
                if (
                    value.type.tensor_type.elem_type == onnx.TensorProto.UINT8
                    and value.name in node.input
                    and node.op_type != "Cast"
                ):
                    self.errors.append(
                        _ParserError(
                            f"{node.op_type}: UINT8 input must feed a Cast layer",
                            index,
                            node.op_type,
                        )
                    )
        if self.errors:
            return False
        for value in inputs:
            dims = tuple(
                d.dim_value if d.HasField("dim_value") else -1
                for d in value.type.tensor_type.shape.dim
            )
            self.network.inputs.append(_Tensor(value.name, dims))
        self.network.outputs = [_Tensor(v.name, (-1,)) for v in model.graph.output]
        self.network.onnx_bytes = bytes(data)
        return True


class _Profile:
    def __init__(self):
        self.shapes = {}

    def set_shape(self, name, mn, opt, mx):
        self.shapes[name] = (tuple(mn), tuple(opt), tuple(mx))


class _Config:
    def __init__(self):
        self.flags, self.profiles, self.pools = set(), [], {}

    def set_memory_pool_limit(self, pool, size):
        self.pools[pool] = size

    def set_flag(self, flag):
        self.flags.add(flag)

    def add_optimization_profile(self, profile):
        self.profiles.append(profile)
        return len(self.profiles) - 1


class Builder:
    builds = 0  # class-wide counter for tests
    fast_fp16 = True

    def __init__(self, logger):
        self.logger = logger

    @property
    def platform_has_fast_fp16(self):
        return type(self).fast_fp16

    def create_network(self, flags=0):
        return _Network()

    def create_builder_config(self):
        return _Config()

    def create_optimization_profile(self):
        return _Profile()

    def build_serialized_network(self, network: _Network, config: _Config):
        type(self).builds += 1
        ((name, shapes),) = config.profiles[0].shapes.items()
        header = {
            "version": _module.__version__,
            "input": name,
            "output": network.outputs[0].name,
            "profile": shapes,
            "fp16": BuilderFlag.FP16 in config.flags,
        }
        return memoryview(MAGIC + json.dumps(header).encode() + b"\n" + network.onnx_bytes)


class Runtime:
    def __init__(self, logger):
        self.logger = logger

    def deserialize_cuda_engine(self, data):
        data = bytes(data)
        if not data.startswith(MAGIC) or b"\n" not in data:
            self.logger.log(_Severity.ERROR, "Engine deserialization failed: magic tag mismatch")
            return None
        header_raw, onnx_bytes = data[len(MAGIC) :].split(b"\n", 1)
        header = json.loads(header_raw)
        if header["version"] != _module.__version__:
            self.logger.log(
                _Severity.ERROR,
                "The engine plan file is not compatible with this version of TensorRT, "
                f"expecting library version {_module.__version__} got {header['version']}, "
                "please rebuild. (version tag does not match)",
            )
            return None
        return _Engine(header, onnx_bytes)


class _Engine:
    def __init__(self, header, onnx_bytes):
        self.header = header
        self.session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
        self.names = [header["input"], header["output"]]

    @property
    def num_io_tensors(self):
        return 2

    def get_tensor_name(self, i):
        return self.names[i]

    def get_tensor_mode(self, name):
        return TensorIOMode.INPUT if name == self.names[0] else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name):
        return DataType.UINT8 if name == self.names[0] else DataType.FLOAT

    def get_tensor_profile_shape(self, name, profile):
        return [tuple(s) for s in self.header["profile"]]

    def create_execution_context(self):
        return _Context(self)


class _Context:
    def __init__(self, engine: _Engine):
        self.engine, self.addresses, self.shape = engine, {}, None
        self.input_shapes: list[tuple[int, ...]] = []

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = int(ptr)

    def set_input_shape(self, name, shape):
        mx = self.engine.header["profile"][2]
        if len(shape) != len(mx) or shape[0] > mx[0] or shape[0] < 1:
            return False
        self.shape = tuple(shape)
        self.input_shapes.append(self.shape)
        return True

    def get_tensor_shape(self, name):
        return self.shape if name == self.engine.names[0] else (self.shape[0],)

    def execute_async_v3(self, stream_handle):
        n = int(np.prod(self.shape))
        src = (ctypes.c_uint8 * n).from_address(self.addresses[self.engine.names[0]])
        crops = np.frombuffer(src, np.uint8).reshape(self.shape).copy()
        (logits,) = self.engine.session.run(None, {self.engine.names[0]: crops})
        logits = np.asarray(logits, np.float32).reshape(-1)
        ctypes.memmove(self.addresses[self.engine.names[1]], logits.ctypes.data, logits.nbytes)
        return True


def make_fake_tensorrt(version: str = "10.3.0.26") -> types.ModuleType:
    module = types.ModuleType("tensorrt")
    module.__version__ = version
    for obj in (
        ILogger,
        DataType,
        TensorIOMode,
        MemoryPoolType,
        BuilderFlag,
        NetworkDefinitionCreationFlag,
        OnnxParser,
        Builder,
        Runtime,
        nptype,
    ):
        setattr(module, obj.__name__, obj)
    global _module
    _module = module
    Builder.builds = 0
    Builder.fast_fp16 = True
    return module


_module = make_fake_tensorrt()
