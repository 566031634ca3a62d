"""ONNX checks and preparation for TensorRT, runnable on any CPU (needs the `onnx` package).

Verity's models take uint8 NHWC crops and normalise inside the graph. TensorRT accepts a
uint8 network input only when it feeds a Cast directly: "No other layers support UINT8
inputs, even just data-movement ops like reshape / transpose" (NVIDIA/TensorRT issue 3985,
maintainer's answer). A PyTorch export of `x.permute(0, 3, 1, 2).float()` gives exactly that
unsupported Transpose -> Cast order; `x.float().permute(0, 3, 1, 2)` gives Cast -> Transpose.

- `tensorrt_compat_issues(model)` lists what TensorRT (or the model-pack contract) will
  reject: input/output names and types, the dynamic batch axis, static crop dimensions,
  uint8 inputs that do not feed a Cast.
- `cast_uint8_inputs_first(model)` rewrites the graph so each uint8 input is cast to float
  first, when every path from it goes through data-movement ops (Transpose, Reshape, ...) to
  a Cast to a float type. Values are identical: every uint8 is exact in float32, and moving
  data commutes with the cast. build_engine applies this before parsing when `onnx` is
  installed.

Where this ran: all of it runs and is tested on the CPU machine with ONNX Runtime
(tests/engines/runtime/test_onnx_prep.py), including "same outputs after the rewrite".
Whether TensorRT then parses the result is only checked on a GPU machine.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import onnx
from onnx import TensorProto, helper

INPUT_NAME = "crops"
OUTPUT_NAME = "logits"
# Optional second output of spatial packs: the embedding the out-of-distribution check reads
# (ONNX Runtime only; the TensorRT engine is built from the logits-only graph).
EMBEDDING_NAME = "embedding"

# Ops that only move or select uint8 values; a float input gives the same values, as floats.
_DATA_MOVEMENT = {
    "Transpose",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Flatten",
    "Identity",
    "Slice",
    "Gather",
    "Expand",
    "Tile",
    "DepthToSpace",
    "SpaceToDepth",
}
# uint8 values 0..255 are exact in each of these.
_FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16}


def _load(model: onnx.ModelProto | str | Path | bytes) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, bytes):
        return onnx.load_model_from_string(model)
    # External weights are not needed to inspect or rewrite the graph.
    return onnx.load(str(model), load_external_data=False)


def _graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    initializers = {init.name for init in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in initializers]


def _dims(value: onnx.ValueInfoProto) -> list[int | str | None]:
    shape = value.type.tensor_type.shape
    if not value.type.tensor_type.HasField("shape"):
        return []
    dims: list[int | str | None] = []
    for dim in shape.dim:
        if dim.HasField("dim_value"):
            dims.append(int(dim.dim_value))
        elif dim.HasField("dim_param"):
            dims.append(dim.dim_param)
        else:
            dims.append(None)
    return dims


def _consumers(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    users: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in model.graph.node:
        for name in node.input:
            if name:
                users[name].append(node)
    return users


def _cast_to(node: onnx.NodeProto) -> int | None:
    for attr in node.attribute:
        if attr.name == "to":
            return int(attr.i)
    return None


def _uint8_paths_ok(model: onnx.ModelProto, input_name: str) -> tuple[bool, list[str]]:
    """(True, ops) when every path from input_name reaches a Cast to a float type through
    data-movement ops only; the ops seen first are returned for messages."""
    users = _consumers(model)
    first_ops = [node.op_type for node in users.get(input_name, [])]
    pending = [input_name]
    seen: set[str] = set()
    while pending:
        tensor = pending.pop()
        if tensor in seen:
            continue
        seen.add(tensor)
        for node in users.get(tensor, []):
            if node.op_type == "Cast":
                if _cast_to(node) not in _FLOAT_TYPES:
                    return False, first_ops
                continue
            # The uint8 tensor must be the data input (index 0), not e.g. a shape input.
            if node.op_type not in _DATA_MOVEMENT or node.input[0] != tensor:
                return False, first_ops
            pending.extend(out for out in node.output if out)
    return True, first_ops


def tensorrt_compat_issues(model: onnx.ModelProto | str | Path | bytes) -> list[str]:
    """What TensorRT or the model-pack contract will reject; empty when the model is fine."""
    model = _load(model)
    issues: list[str] = []
    inputs = _graph_inputs(model)
    if len(inputs) != 1:
        issues.append(f"expected one input, found {len(inputs)}: {[i.name for i in inputs]}")
    users = _consumers(model)
    for value in inputs:
        elem = value.type.tensor_type.elem_type
        if value.name != INPUT_NAME:
            issues.append(
                f"input is named {value.name!r}; the pack contract names it {INPUT_NAME!r}"
            )
        if elem != TensorProto.UINT8:
            issues.append(
                f"input {value.name!r} is {TensorProto.DataType.Name(elem)}; "
                "the pack contract is uint8 (normalisation inside the graph)"
            )
        dims = _dims(value)
        if len(dims) not in (4, 5):
            issues.append(
                f"input {value.name!r} has rank {len(dims)}; expected N,H,W,3 or N,T,H,W,3"
            )
        else:
            if isinstance(dims[0], int):
                issues.append(
                    f"input {value.name!r} has a fixed batch size {dims[0]}; export it with a "
                    "dynamic batch axis (TensorRT's optimisation profile needs one)"
                )
            fixed = dims[1:]
            if not all(isinstance(d, int) and d > 0 for d in fixed):
                issues.append(
                    f"input {value.name!r} has dynamic crop dimensions {fixed}; only the batch "
                    "axis may be dynamic"
                )
            elif fixed[-1] != 3:
                issues.append(
                    f"input {value.name!r} is not channels-last BGR: last axis {fixed[-1]}"
                )
        if elem == TensorProto.UINT8:
            consumers = users.get(value.name, [])
            if any(node.op_type != "Cast" for node in consumers):
                ok, ops = _uint8_paths_ok(model, value.name)
                fix = (
                    "cast_uint8_inputs_first() can fix this graph"
                    if ok
                    else "cast the input to float first in the model's forward()"
                )
                issues.append(
                    f"uint8 input {value.name!r} feeds {sorted(set(ops))}: TensorRT only accepts "
                    f"a uint8 input that feeds a Cast directly ({fix})"
                )
    outputs = [o for o in model.graph.output if o.name != EMBEDDING_NAME]
    if len(outputs) != 1:
        issues.append(f"expected one output, found {len(outputs)}: {[o.name for o in outputs]}")
    for value in outputs:
        if value.name != OUTPUT_NAME:
            issues.append(
                f"output is named {value.name!r}; the pack contract names it {OUTPUT_NAME!r}"
            )
        elem = value.type.tensor_type.elem_type
        if elem != TensorProto.FLOAT:
            issues.append(
                f"output {value.name!r} is {TensorProto.DataType.Name(elem)}; "
                "expected float32 logits"
            )
        dims = _dims(value)
        if dims and (len(dims) > 2 or (len(dims) == 2 and dims[1] != 1)):
            issues.append(f"output {value.name!r} has shape {dims}; expected [N] (or [N, 1])")
    return issues


def cast_uint8_inputs_first(
    model: onnx.ModelProto | str | Path | bytes,
) -> tuple[onnx.ModelProto, list[str]]:
    """A copy of the model where each uint8 input feeds one Cast-to-float first.

    Returns (model, notes); notes is empty when nothing needed changing. Raises ValueError
    when a uint8 input reaches something other than data movement and a float Cast (then the
    rewrite could change results, and the export itself must change).
    """
    source = _load(model)
    out = onnx.ModelProto()
    out.CopyFrom(source)
    notes: list[str] = []
    users = _consumers(out)
    for value in _graph_inputs(out):
        if value.type.tensor_type.elem_type != TensorProto.UINT8:
            continue
        consumers = users.get(value.name, [])
        if all(node.op_type == "Cast" for node in consumers):
            continue
        ok, ops = _uint8_paths_ok(out, value.name)
        if not ok:
            raise ValueError(
                f"uint8 input {value.name!r} feeds {sorted(set(ops))} on a path that is not "
                "data movement followed by a Cast to float; cast it in the model instead"
            )
        # Tensors between the input and the casts change type from uint8 to float.
        retyped: set[str] = set()
        pending = [value.name]
        while pending:
            tensor = pending.pop()
            for node in users.get(tensor, []):
                if node.op_type == "Cast":
                    continue
                for name in node.output:
                    if name and name not in retyped:
                        retyped.add(name)
                        pending.append(name)
        as_float = _unique_name(out, f"{value.name}_as_float")
        for node in consumers:
            for i, name in enumerate(node.input):
                if name == value.name:
                    node.input[i] = as_float
        cast = helper.make_node(
            "Cast",
            [value.name],
            [as_float],
            to=TensorProto.FLOAT,
            name=_unique_name(out, f"verity_cast_{value.name}"),
        )
        out.graph.node.insert(0, cast)
        # Drop stale uint8 annotations of the retyped tensors; shape inference redoes them.
        kept = [vi for vi in out.graph.value_info if vi.name not in retyped]
        del out.graph.value_info[:]
        out.graph.value_info.extend(kept)
        notes.append(
            f"uint8 input {value.name!r} now feeds a Cast to float first "
            f"(it fed {sorted(set(ops))}); values are unchanged"
        )
    return out, notes


def _unique_name(model: onnx.ModelProto, base: str) -> str:
    taken = {n.name for n in model.graph.node}
    for node in model.graph.node:
        taken.update(node.input)
        taken.update(node.output)
    taken.update(v.name for v in model.graph.input)
    taken.update(i.name for i in model.graph.initializer)
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    return name


def logits_only(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """Drop every graph output but the logits (nodes feeding only them are then dead and
    TensorRT's parser prunes them)."""
    extra = [o.name for o in model.graph.output if o.name != OUTPUT_NAME]
    if not extra or len(extra) == len(model.graph.output):
        return model, []
    keep = [o for o in model.graph.output if o.name == OUTPUT_NAME]
    del model.graph.output[:]
    model.graph.output.extend(keep)
    return model, [f"outputs {extra} dropped: the engine serves logits only"]


def prepare_for_tensorrt(onnx_bytes: bytes) -> tuple[bytes, list[str]]:
    """The ONNX bytes TensorRT should parse, and notes on what was changed."""
    model, notes = cast_uint8_inputs_first(onnx_bytes)
    model, dropped = logits_only(model)
    notes = notes + dropped
    if not notes:
        return onnx_bytes, []
    return model.SerializeToString(), notes
