"""The temporal model in the pipeline: per-track windows, stride, escalation, fusion."""

import numpy as np
import pytest

from agent.config import load_config
from agent.pipeline import Pipeline
from agent.pipeline.scorer import FaceScorer
from tests.support.packs import temporal_plumbing_pack


def run(clip, **models):
    models.setdefault("deep", None)  # the spatial and temporal models decide here
    config = load_config(streams=[{"url": str(clip.path), "id": "c"}], models=models)
    seen = []
    pipeline = Pipeline(config, on_observations=lambda obs, scores: seen.extend(
        s.fused if s is not None else float("nan") for s in scores))
    pipeline.run()
    return pipeline, seen


def test_temporal_windows_run_every_stride_frames_and_fuse(tmp_path, real_clip):
    pack = temporal_plumbing_pack(tmp_path / "temporal")
    pipeline, fused = run(real_clip, temporal=str(pack), temporal_stride=4)
    scorer = pipeline.scorer
    (state,) = pipeline.track_states()["c"]
    judged = state.rolling.judged_frames
    # One window once 8 crops are in, then one every 4 frames.
    assert scorer.windows_scored == 1 + (judged - 8) // 4
    assert set(state.model_scores) == {"spatial", "temporal"}
    # A still face: the plumbing model's temporal logit is ~0, so with weights (1, 1) the
    # fused probability is the sigmoid of the mean spatial logit over the window.
    assert state.model_scores["temporal"] == pytest.approx(0.5, abs=0.05)
    assert all(0.0 <= p <= 1.0 for p in fused)
    assert pipeline.scorer.model_ids["temporal"] == "temporal-plumbing@0"


def test_escalation_mode_skips_tracks_below_the_escalation_level(tmp_path, real_clip):
    pack = temporal_plumbing_pack(tmp_path / "temporal")
    pipeline, _ = run(real_clip, temporal=str(pack), temporal_mode="escalation", temporal_escalate_at=0.999)
    assert pipeline.scorer.windows_scored == 0
    (state,) = pipeline.track_states()["c"]
    assert set(state.model_scores) == {"spatial"}


def test_fusion_weights_decide_the_probability(tmp_path, real_clip):
    pack = temporal_plumbing_pack(
        tmp_path / "temporal", fusion={"weights": {"spatial": 0.0, "temporal": 0.0}, "bias": 2.0}
    )
    _, fused = run(real_clip, temporal=str(pack))
    late = [p for p in fused if not np.isnan(p)][10:]
    assert late and all(p == pytest.approx(1 / (1 + np.exp(-2.0)), abs=1e-4) for p in late)


def test_with_max_fusion_either_model_raises_the_score_and_neither_vetoes(tmp_path, real_clip):
    _, spatial_only = run(real_clip, temporal=None)
    alarmed = temporal_plumbing_pack(tmp_path / "up", fusion={"rule": "max"}, calibration_bias=3.0)
    _, raised = run(real_clip, temporal=str(alarmed))
    # A still face: the plumbing temporal logit is ~0, its probability ~sigmoid(3) = 0.95.
    late = [p for p in raised if not np.isnan(p)][10:]
    alone = [p for p in spatial_only if not np.isnan(p)][10:]
    assert late and min(late) >= 0.9 > max(alone)
    calm = temporal_plumbing_pack(tmp_path / "down", fusion={"rule": "max"}, calibration_bias=-6.0)
    _, kept = run(real_clip, temporal=str(calm))
    # The temporal model says "real" (0.0025): the score stays the spatial model's.
    kept = [p for p in kept if not np.isnan(p)][10:]
    assert np.mean(kept) == pytest.approx(np.mean(alone), abs=0.03)


def test_with_gated_max_the_spatial_model_raises_only_past_its_gate(tmp_path, real_clip):
    _, spatial_only = run(real_clip, temporal=None)
    alone = [p for p in spatial_only if not np.isnan(p)][10:]
    calm = temporal_plumbing_pack(tmp_path / "calm", calibration_bias=-6.0,
                                  fusion={"rule": "gated_max", "spatial_gate": 0.999})
    _, gated = run(real_clip, temporal=str(calm))
    # The real clip's spatial probabilities stay below a 0.999 gate: the calm temporal model's
    # ~0.003 is the score once its window runs, where plain max kept the spatial one (~0.7).
    late = [p for p in gated if not np.isnan(p)][10:]
    assert max(alone) < 0.999 and late and max(late) < 0.01
    open_gate = temporal_plumbing_pack(tmp_path / "open", calibration_bias=-6.0,
                                       fusion={"rule": "gated_max", "spatial_gate": 0.0})
    _, kept = run(real_clip, temporal=str(open_gate))
    kept = [p for p in kept if not np.isnan(p)][10:]
    assert np.mean(kept) == pytest.approx(np.mean(alone), abs=0.03)  # gate 0: plain max


def test_an_unknown_fusion_rule_is_refused_naming_it(tmp_path):
    pack = temporal_plumbing_pack(tmp_path / "t", fusion={"rule": "median"})
    config = load_config(models={"deep": None, "temporal": str(pack)})
    from engines.registry import PackError

    with pytest.raises(PackError, match="fusion rule 'median'.*max, logistic"):
        FaceScorer(config.models)


def test_stills_keep_the_spatial_threshold_when_fusing(tmp_path):
    pack = temporal_plumbing_pack(tmp_path / "t", alert_threshold=0.99)
    spatial_alone = FaceScorer(load_config(models={"deep": None, "temporal": None}).models)
    fusing = FaceScorer(load_config(models={"deep": None, "temporal": str(pack)}).models)
    assert fusing.threshold == 0.99  # the fused probability's, for tracks in a video
    assert fusing.still_threshold == spatial_alone.threshold == spatial_alone.still_threshold


def test_a_spatial_pack_cannot_serve_as_temporal():
    config = load_config(models={"deep": None, "temporal": "spatial-sbi"})
    from engines.registry import PackError

    with pytest.raises(PackError, match="role 'spatial', not 'temporal'"):
        FaceScorer(config.models)


def test_fusion_fitted_with_another_spatial_model_is_refused(tmp_path):
    pack = temporal_plumbing_pack(
        tmp_path / "temporal",
        fusion={"weights": {"spatial": 1.0, "temporal": 1.0}, "bias": 0.0,
                "spatial_model": "spatial-sbi@0.9", "spatial_onnx_sha256": "0" * 64},
    )
    config = load_config(models={"deep": None, "temporal": str(pack)})
    from engines.registry import PackError

    with pytest.raises(PackError, match="fitted with spatial-sbi@0.9.*refit it"):
        FaceScorer(config.models)


def test_a_gap_in_the_track_restarts_its_window(tmp_path):
    """A window is T consecutive analysed frames: one the track's face was not judged in
    (refused, missed) must not be bridged, and the old temporal score stops speaking."""
    pack = temporal_plumbing_pack(tmp_path / "t")
    scorer = FaceScorer(load_config(models={"deep": None, "temporal": str(pack)}).models)
    assert scorer.temporal_pack.card.input.align == scorer.align_spec  # crops reused as they are
    crop = np.random.default_rng(0).integers(0, 255, (1, 128, 128, 3), np.uint8)

    def judge(step: int):
        (score,) = scorer.score([("s", 1)], crop, [None], [None], [None], steps=[step])
        return score

    scored = [("temporal" in judge(step).by_role) for step in range(1, 9)]
    assert scored == [False] * 7 + [True] and scorer.windows_scored == 1
    assert "temporal" in judge(9).by_role  # consecutive: the window's score still holds
    after_gap = [("temporal" in judge(step).by_role) for step in range(11, 19)]
    assert after_gap == [False] * 7 + [True]  # refilled from the gap on, then judged again
    assert scorer.windows_scored == 2
