"""The temporal model: shapes, ONNX export to a pack, runtime parity with torch, the TensorRT
input rule, the fusion entry of the card, and a seeded training smoke run (no data folder)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from engines.faces.align import AlignSpec  # noqa: E402
from engines.models.temporal import (  # noqa: E402
    TemporalNet,
    WindowClassifier,
    build_temporal_model,
    count_temporal_macs,
)
from engines.registry import Calibration, InputSpec, ModelCard, resolve_pack, write_card  # noqa: E402
from engines.synthesis.sbi import face_ellipse_landmarks  # noqa: E402
from engines.train.temporal import fusion_entry, train_model  # noqa: E402
from engines.train.temporal_data import WindowBank  # noqa: E402
from engines.train.temporal_export import (  # noqa: E402
    export_temporal_onnx,
    torch_window_logits,
)
from tests.support.temporal_nets import SIZE, WIDTHS, T, random_windows, tiny_net  # noqa: E402


def test_forward_shapes():
    net = tiny_net()
    x = torch.randn(3, T, 3, SIZE, SIZE)
    assert net(x).shape == (3,)
    logits, aux = net.forward_aux(x)
    assert logits.shape == (3,) and aux.shape == (3 * T, 1, SIZE // 8, SIZE // 8)
    wrapped = WindowClassifier(net).eval()
    out = wrapped(torch.from_numpy(random_windows(2)))
    assert out.shape == (2,) and out.dtype == torch.float32
    assert count_temporal_macs(net, T, SIZE) > 0
    assert isinstance(build_temporal_model({"widths": list(WIDTHS)}, T), TemporalNet)


def test_the_model_sees_frame_order():
    """Frame differences and temporal convs: shuffling the frames changes the logit."""
    net = tiny_net()
    w = random_windows(1)
    shuffled = w[:, np.random.default_rng(0).permutation(T)]
    a, b = torch_window_logits(net, w), torch_window_logits(net, shuffled)
    assert abs(float(a[0] - b[0])) > 1e-6


def _pack(tmp_path, net) -> object:
    folder = tmp_path / "temporal-test"
    export_temporal_onnx(net, folder / "model.onnx", T, SIZE)
    spec = AlignSpec(SIZE, 3.0, 0.55)
    card = ModelCard(
        name="temporal-test", version="0.0.1", role="temporal", onnx="model.onnx",
        input=InputSpec(size=spec.size, scale=spec.scale, center_y=spec.center_y, frames=T,
                        layout="NTHWC"),
        calibration=Calibration(temperature=2.0, bias=0.1, fitted_on="test"),
        training={"fusion": fusion_entry("logistic", (0.5, 1.5, -0.25), "spatial-test@1.0.0",
                                         "0" * 64, T, n_real=10, n_sbi=10, threshold=0.7,
                                         max_fpr=0.01, compared={})},
    )
    write_card(folder, card)
    return resolve_pack(folder)


def test_export_round_trip_through_a_pack(tmp_path):
    from engines.runtime.onnxruntime import OnnxRuntimeEngine

    net = tiny_net()
    pack = _pack(tmp_path, net)
    assert pack.card.role == "temporal" and pack.card.input.frames == T
    assert pack.card.input.layout == "NTHWC"
    engine = OnnxRuntimeEngine(pack, threads=1)
    windows = random_windows(5, seed=1)
    ours = engine.infer(windows)
    assert ours.shape == (5,) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, torch_window_logits(net, windows), atol=1e-4, rtol=1e-4)
    assert engine.infer(windows[:1]).shape == (1,)  # dynamic batch


def test_flip_average_export_scores_a_window_and_its_mirror_alike(tmp_path):
    from engines.runtime.onnx_prep import tensorrt_compat_issues
    from engines.train.temporal_export import onnx_window_logits

    net = tiny_net()
    path = export_temporal_onnx(net, tmp_path / "flip.onnx", T, SIZE, flip_average=True)
    windows = random_windows(3, seed=2)
    mirrored = np.ascontiguousarray(windows[:, :, :, ::-1])
    ours = onnx_window_logits(path, windows)
    np.testing.assert_allclose(ours, onnx_window_logits(path, mirrored), atol=1e-4, rtol=1e-4)
    plain = (torch_window_logits(net, windows) + torch_window_logits(net, mirrored)) / 2
    np.testing.assert_allclose(ours, plain, atol=1e-4, rtol=1e-4)
    assert not np.allclose(plain, torch_window_logits(net, windows), atol=1e-4)
    np.testing.assert_allclose(
        ours, torch_window_logits(net, windows, flip_average=True), atol=1e-4, rtol=1e-4)
    assert tensorrt_compat_issues(path) == []
    assert onnx_window_logits(path, windows[:1]).shape == (1,)


def test_export_passes_the_tensorrt_input_rule(tmp_path):
    import onnx

    from engines.runtime.onnx_prep import tensorrt_compat_issues

    pack = _pack(tmp_path, tiny_net())
    assert tensorrt_compat_issues(pack.onnx_path) == []
    model = onnx.load(str(pack.onnx_path))
    (inp,) = [i for i in model.graph.input if i.name == "crops"]
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["N", T, SIZE, SIZE, 3]
    users = [n for n in model.graph.node if "crops" in n.input]
    assert [n.op_type for n in users] == ["Cast"]


def test_fusion_entry_shape_in_the_card(tmp_path):
    pack = _pack(tmp_path, tiny_net())
    card = json.loads((pack.folder / "card.json").read_text())
    fusion = card["training"]["fusion"]
    assert set(fusion["weights"]) == {"spatial", "temporal"}
    assert all(isinstance(v, float) for v in fusion["weights"].values())
    assert isinstance(fusion["bias"], float) and fusion["fitted_on"]
    assert fusion["spatial_model"] == "spatial-test@1.0.0"
    w_s, w_t, b = fusion["weights"]["spatial"], fusion["weights"]["temporal"], fusion["bias"]
    assert (w_s, w_t, b) == (0.5, 1.5, -0.25)


def test_max_fusion_entry_has_no_weights_and_matches_the_agent():
    from engines.train.temporal import fused_probability

    entry = fusion_entry("max", (0.5, 1.5, -0.25), "spatial-test@1.0.0", "0" * 64, T,
                         n_real=10, n_sbi=10, threshold=0.7, max_fpr=0.01,
                         compared={"max": {"sbi_window_auc": 0.9}})
    assert entry["rule"] == "max" and "weights" not in entry and "no real fake" in entry["fitted_on"]
    # Per frame the larger probability, then the window's mean (as the agent's frames).
    fused = fused_probability("max", np.array([[-2.0, 2.0], [0.0, 0.0]]), np.array([0.0, 3.0]),
                              (1.0, 0.0), (1.0, 0.0), (0.5, 1.5, -0.25))
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    np.testing.assert_allclose(fused, [(0.5 + sig(2.0)) / 2, sig(3.0)], rtol=1e-6)


def test_gated_max_fusion_entry_carries_its_gate_and_matches_the_agent():
    from agent.scoring import Fusion
    from engines.train.temporal import fused_probability

    entry = fusion_entry("gated_max", (0.5, 1.5, -0.25), "spatial-test@1.0.0", "0" * 64, T,
                         n_real=10, n_sbi=10, threshold=0.7, max_fpr=0.01, compared={},
                         spatial_gate=0.8)
    assert entry["rule"] == "gated_max" and entry["spatial_gate"] == 0.8
    with pytest.raises(ValueError, match="spatial_gate"):
        fusion_entry("gated_max", (0.5, 1.5, -0.25), "spatial-test@1.0.0", "0" * 64, T,
                     n_real=10, n_sbi=10, threshold=0.7, max_fpr=0.01, compared={})
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    # Frame spatial probabilities sig(-2), sig(2) = 0.88, sig(1) = 0.73; window temporal sig(0).
    spatial, temporal = np.array([[-2.0, 2.0, 1.0]]), np.array([0.0])
    fused = fused_probability("gated_max", spatial, temporal, (1.0, 0.0), (1.0, 0.0),
                              (0.5, 1.5, -0.25), spatial_gate=0.8)
    # Only the frame at 0.88 passes the gate; the others take the temporal 0.5.
    np.testing.assert_allclose(fused, [(0.5 + sig(2.0) + 0.5) / 3], rtol=1e-6)
    agent = Fusion("gated_max", spatial_gate=0.8)
    per_frame = [agent.fuse(sig(s), 0.5, spatial[0], 0.0) for s in spatial[0]]
    np.testing.assert_allclose(fused, [np.mean(per_frame)], rtol=1e-6)


def _bank(tmp_path) -> WindowBank:
    loose = AlignSpec(SIZE, 3.0, 0.55).widened(1.5, 72)
    rng = np.random.default_rng(0)
    n = 12
    crops = rng.integers(30, 220, (n, loose.size, loose.size, 3), dtype=np.uint8)
    mesh = np.stack([face_ellipse_landmarks(loose.destination_points(), 468)] * n)
    return WindowBank(crops, mesh.astype(np.float32), np.zeros(n, np.int32),
                      np.arange(n, dtype=np.int32), np.arange(n - T + 1), T, ["a"], ["real"],
                      [""], ["g"]), loose


CFG = {
    "seed": 3,
    "model": {"widths": list(WIDTHS), "dropout": 0.0},
    "sbi": {}, "augment": {}, "fakes": {},
    "train": {"epochs": 2, "batch_pairs": 2, "steps_per_epoch": 2, "workers": 0,
              "aux_weight": 0.5, "threads": 1, "lr": 0.01, "warmup_epochs": 0.5},
}


def test_training_runs_and_is_reproducible(tmp_path):
    bank, loose = _bank(tmp_path)
    target = AlignSpec(SIZE, 3.0, 0.55)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, hist_a, _ = train_model(CFG, bank, target, loose, T, tmp_path / "a")
    b, hist_b, _ = train_model(CFG, bank, target, loose, T, tmp_path / "b")
    assert len(hist_a) == 2 and np.isfinite(hist_a[-1]["loss"])
    assert [h["loss"] for h in hist_a] == [h["loss"] for h in hist_b]
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_a_misspelt_fusion_rule_fails_before_training():
    from engines.train.temporal import fusion_rule_of

    assert fusion_rule_of({"fusion": {"rule": "max"}}) == "max"
    assert fusion_rule_of({}) == "logistic"
    with pytest.raises(ValueError, match="fusion.rule: 'maximum' is not one of gated_max, max, logistic"):
        fusion_rule_of({"fusion": {"rule": "maximum"}})


def test_a_wrong_export_setting_fails_before_training():
    from engines.train.temporal import export_options

    assert export_options({}) == (17, False)
    assert export_options({"export": {"flip_average": True}}) == (17, True)
    with pytest.raises(ValueError, match="export.flip_average: 'false' is not true or false"):
        export_options({"export": {"flip_average": "false"}})
    with pytest.raises(ValueError, match=r"export: unknown keys \['flip'\]"):
        export_options({"export": {"flip": True}})
    with pytest.raises(ValueError, match="export.opset"):
        export_options({"export": {"opset": "17"}})


def test_the_card_says_whether_another_rule_beats_the_chosen_one():
    from engines.train.temporal_card import _fusion_lines

    def text(low: float) -> str:
        fusion = fusion_entry("gated_max", (1.0, 1.0, 0.0), "spatial-sbi@9", "0" * 64, 8,
                              n_real=10, n_sbi=10, threshold=0.7, max_fpr=0.01, spatial_gate=0.8,
                              compared={"gated_max": {"sbi_window_auc": 0.81, "fake_video_auc": 0.8},
                                        "max": {"sbi_window_auc": 0.83, "fake_video_auc": 0.7,
                                                "sbi_auc_minus_chosen_ci95": [low, 0.04]}})
        return "\n".join(_fusion_lines(fusion))

    assert "| max | 0.830 | -0.010 to +0.040 | 0.700 |" in text(-0.01)
    assert "No rule differs from `gated_max` beyond the interval" in text(-0.01)
    assert "`max` scores higher than `gated_max` beyond the interval" in text(0.005)
