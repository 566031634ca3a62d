"""The shipped temporal-sbi pack loads, its checksum matches, it scores windows, and its card
carries the fusion with the spatial model."""

from __future__ import annotations

import numpy as np
import pytest

from engines.registry import FUSION_RULES, PACKS_DIR, file_sha256, resolve_pack


@pytest.fixture(scope="module")
def pack():
    if not (PACKS_DIR / "temporal-sbi" / "card.json").is_file():
        pytest.skip("engines/packs/temporal-sbi has not been built yet")
    return resolve_pack("temporal-sbi")


def test_pack_loads_and_checksum_matches(pack):
    card = pack.card
    assert card.name == "temporal-sbi" and card.role == "temporal"
    assert card.onnx_sha256 == file_sha256(pack.onnx_path)
    assert card.input.layout == "NTHWC" and card.input.frames >= 8
    assert card.input.size > 0 and card.input.scale > 0
    assert pack.onnx_path.stat().st_size < 8 * 1024 * 1024
    assert (pack.folder / "MODEL_CARD.md").is_file()
    assert 0 < card.threshold < 1 and card.calibration.temperature > 0
    assert card.metrics.get("protocol")


def test_pack_fusion_entry(pack):
    from agent.scoring import Fusion

    fusion = pack.card.training["fusion"]
    assert "no real fake" in fusion["fitted_on"]
    name, _, version = fusion["spatial_model"].partition("@")
    assert name and version
    assert Fusion.from_card(pack).rule == fusion["rule"]
    # The rule is compared on the validation self-blends: no other rule beats it there beyond
    # the paired 95% bootstrap interval of the difference (cards written before the interval
    # was recorded: none scores higher at all).
    compared = fusion["compared"]
    assert set(compared) == set(FUSION_RULES)
    chosen = compared[fusion["rule"]]["sbi_window_auc"]
    for rule, c in compared.items():
        if rule == fusion["rule"]:
            continue
        if "sbi_auc_minus_chosen_ci95" in c:
            low, high = c["sbi_auc_minus_chosen_ci95"]
            assert low <= 0 and low <= c["sbi_window_auc"] - chosen <= high
        else:
            assert c["sbi_window_auc"] <= chosen
    if fusion["rule"] == "gated_max":  # the gate is the shipped spatial pack's own threshold
        assert fusion["spatial_gate"] == pytest.approx(resolve_pack("spatial-sbi").card.threshold, abs=1e-6)


def test_pack_passes_the_tensorrt_input_rule(pack):
    pytest.importorskip("onnx")
    from engines.runtime.onnx_prep import tensorrt_compat_issues

    assert tensorrt_compat_issues(pack.onnx_path) == []


def test_pack_scores_windows(pack):
    from engines.runtime.onnxruntime import OnnxRuntimeEngine

    spec = pack.card.input
    engine = OnnxRuntimeEngine(pack, threads=1)
    windows = np.random.default_rng(0).integers(
        0, 256, (2, spec.frames, spec.size, spec.size, 3), dtype=np.uint8)
    logits = engine.infer(windows)
    assert logits.shape == (2,) and logits.dtype == np.float32 and np.isfinite(logits).all()
    assert engine.infer(windows[:1]).shape == (1,)


def test_pack_graph_is_what_its_card_says_about_mirror_images(pack):
    """flip_average in the card: a window and its mirror image score alike; without it, the
    network is free to tell them apart."""
    from engines.runtime.onnxruntime import OnnxRuntimeEngine

    spec = pack.card.input
    engine = OnnxRuntimeEngine(pack, threads=1)
    windows = np.random.default_rng(1).integers(
        0, 256, (3, spec.frames, spec.size, spec.size, 3), dtype=np.uint8)
    mirrored = np.ascontiguousarray(windows[:, :, :, ::-1])
    same = np.allclose(engine.infer(windows), engine.infer(mirrored), atol=1e-4)
    assert same == bool((pack.card.training.get("export") or {}).get("flip_average"))
