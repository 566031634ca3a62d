"""The deep trainer's fusion with the spatial model: the spatial crop cut from the deep crop is
the crop the agent aligns, and each fold's fused figure uses only what its head trained on."""

from __future__ import annotations

import numpy as np
import pytest

from engines.faces.align import AlignSpec, alignment_matrix, recrop_matrix
from engines.registry import Calibration, InputSpec
from engines.train import deep
from engines.train.deep_fusion import check_fits, fused
from tests.engines.test_train_deep import CONFIG, files_for, paired_spec

DEEP = InputSpec(size=224, scale=3.5, center_y=0.5)
SPATIAL = InputSpec(size=128, scale=3.0, center_y=0.55)


def as3(m: np.ndarray) -> np.ndarray:
    return np.vstack([m, [0, 0, 1]])


def test_the_spatial_crop_cut_from_the_deep_crop_is_the_one_the_agent_aligns():
    rng = np.random.default_rng(0)
    for _ in range(5):
        eyes = rng.uniform(200, 600, 2)
        d = rng.uniform(30, 120)
        angle = rng.uniform(-0.4, 0.4)
        r = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        face = np.array([[-0.5, 0], [0.5, 0], [0, 0.55], [0, 1.07]]) * d
        points = (face @ r.T + eyes).astype(np.float32)
        direct = alignment_matrix(points, AlignSpec(128, 3.0, 0.55))
        via_deep = as3(recrop_matrix(DEEP.align, SPATIAL.align)) @ as3(
            alignment_matrix(points, DEEP.align))
        assert np.allclose(via_deep[:2], direct, atol=1e-3)


def test_a_crop_wider_than_the_cached_one_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        check_fits(SPATIAL, DEEP)


def test_each_folds_fusion_scales_come_from_its_training_reals_and_the_spatial_side_can_lift_it():
    rng = np.random.default_rng(3)
    files = files_for(rng, paired_spec(8), {"face_swap": 0.3, "lip_sync": 3.0})
    cfg = deep.load_config(CONFIG)
    cfg = cfg.model_copy(update={"families": {"face_swap": ["face_swap"], "lip_sync": ["lip_sync"]}})
    val_real = {"r0", "r1", "r2"}
    figures, _, heads = deep.leave_one_out(files, val_real, cfg)
    # A spatial model that sees swaps (but not lip sync) clearly: it lifts the swap fold.
    logits = {f.entry.rel: rng.normal(3.0 if f.entry.family == "face_swap" and f.y else 0.0, 1, len(f.x))
              for f in files}
    data = deep.FusionData(pack=None, logits=logits,  # type: ignore[arg-type]
                           section=deep.SpatialFusionSection(pack="spatial-sbi", weight=1.0))
    held = deep.fused_leave_one_out(files, val_real, heads, data, figures)
    swap = figures["face_swap"]
    assert swap["fused"]["auc"] > swap["auc"] + 0.1
    assert swap["spatial_alone"]["auc"] > 0.9
    assert set(held) == {f.entry.rel for f in files if f.y}
    # The scales are the spreads on the fold head's own training reals, not on its test files.
    _, train, test = deep.fold_sets(files, "face_swap", val_real)
    train_reals = [f for f in train if f.fold == "real"]
    expected = np.std(np.concatenate([logits[f.entry.rel] for f in train_reals]))
    assert swap["fused"]["spatial_scale"] == pytest.approx(expected)
    for f in test:
        if not f.y:
            logits[f.entry.rel] = logits[f.entry.rel] * 10  # test reals only: scales stay
    again = {k: dict(v) for k, v in figures.items()}
    deep.fused_leave_one_out(files, val_real, heads, data, again)
    assert again["face_swap"]["fused"]["spatial_scale"] == pytest.approx(expected)


def test_the_fused_logit_is_the_cards_formula():
    z = fused(np.array([2.0]), np.array([3.0]), 0.4, 2.0, 1.5)
    assert z[0] == pytest.approx(2.0 / 2.0 + 0.4 * 3.0 / 1.5)
    cal = Calibration(temperature=1.3, bias=-0.2)
    assert cal.apply(z)[0] == pytest.approx(1 / (1 + np.exp(-(z[0] / 1.3 - 0.2))))


def test_the_shipped_config_fuses_with_the_shipped_spatial_pack():
    from engines.registry import resolve_pack

    cfg = deep.load_config(CONFIG)
    assert cfg.spatial_fusion is not None
    assert resolve_pack(cfg.spatial_fusion.pack).card.role == "spatial"
