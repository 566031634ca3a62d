"""The out-of-distribution check: the distance, its threshold, and the exported embedding."""

from __future__ import annotations

import numpy as np
import pytest

from engines.ood import OODStats, fit


def test_far_points_are_out_and_held_out_points_mostly_in(tmp_path):
    rng = np.random.default_rng(0)
    scales = np.linspace(0.5, 3.0, 16)  # anisotropic: Mahalanobis, not Euclidean, matters
    train = rng.normal(size=(2000, 16)) * scales
    held_out = rng.normal(size=(1000, 16)) * scales
    stats, measured = fit(train, held_out, quantile=0.99)
    assert measured["n_train"] == 2000 and measured["dims"] == 16
    fresh = rng.normal(size=(5000, 16)) * scales
    assert 0.003 < stats.out_of_distribution(fresh).mean() < 0.03  # ~1% by construction
    # 10 standard deviations along the narrowest axis: far in Mahalanobis terms, though nearer
    # the mean in Euclidean terms than a typical training point.
    far = np.zeros((1, 16))
    far[0, 0] = 10 * scales[0]
    assert np.linalg.norm(far) < np.median(np.linalg.norm(train, axis=1))
    assert stats.out_of_distribution(far).all()
    path = stats.save(tmp_path / "ood.npz")
    loaded = OODStats.load(path)
    assert loaded.threshold == pytest.approx(stats.threshold)
    np.testing.assert_allclose(loaded.distances(fresh[:10]), stats.distances(fresh[:10]), rtol=1e-6)


def test_fit_needs_data():
    with pytest.raises(ValueError, match="needs"):
        fit(np.zeros((1, 4)), np.zeros((3, 4)), 0.99)


def test_exported_embedding_reaches_onnxruntime_and_tensorrt_gets_logits_only(tmp_path):
    torch = pytest.importorskip("torch")
    onnx = pytest.importorskip("onnx")
    import onnxruntime as ort

    from engines.export import export_onnx, torch_logits
    from engines.models import VerityCNN
    from engines.registry import InputSpec, ModelCard, resolve_pack, write_card
    from engines.runtime.onnx_prep import prepare_for_tensorrt, tensorrt_compat_issues
    from engines.runtime.onnxruntime import OnnxRuntimeEngine

    torch.manual_seed(0)
    net = VerityCNN(widths=(8, 16), depths=(1, 1), dropout=0.0, highpass=True, decoder=8,
                    map_stride=4, map_logit=True).eval()
    size = 48
    export_onnx(net, tmp_path / "pack" / "model.onnx", size, embedding=True)
    write_card(tmp_path / "pack", ModelCard(name="tiny", version="0", role="spatial", onnx="model.onnx",
                                            input=InputSpec(size=size, scale=3.0, center_y=0.55)))
    engine = OnnxRuntimeEngine(resolve_pack(tmp_path / "pack"), threads=1)
    assert engine.has_embedding
    crops = np.random.default_rng(1).integers(0, 256, (4, size, size, 3), dtype=np.uint8)
    logits, embedding = engine.infer_with_embedding(crops)
    assert embedding.shape == (4, 16)
    np.testing.assert_allclose(logits, torch_logits(net, crops), atol=1e-4)
    np.testing.assert_allclose(engine.infer(crops), logits, atol=1e-6)

    data = (tmp_path / "pack" / "model.onnx").read_bytes()
    assert tensorrt_compat_issues(data) == []
    prepared, notes = prepare_for_tensorrt(data)
    assert [o.name for o in onnx.load_from_string(prepared).graph.output] == ["logits"]
    assert any("embedding" in note for note in notes)
    session = ort.InferenceSession(prepared, providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"crops": crops})[0], logits, atol=1e-5)


def test_a_pack_naming_a_missing_ood_file_is_refused(tmp_path):
    pytest.importorskip("torch")
    from engines.export import export_onnx
    from engines.models import VerityCNN
    from engines.registry import InputSpec, ModelCard, OODSpec, PackError, resolve_pack, write_card

    export_onnx(VerityCNN(widths=(8,), depths=(1,)).eval(), tmp_path / "model.onnx", 32, embedding=True)
    write_card(tmp_path, ModelCard(name="tiny", version="0", role="spatial", onnx="model.onnx",
                                   input=InputSpec(size=32, scale=3.0, center_y=0.55),
                                   ood=OODSpec(file="ood.npz", method="test")))
    with pytest.raises(PackError, match="ood.npz is missing"):
        resolve_pack(tmp_path)
