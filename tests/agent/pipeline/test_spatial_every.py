"""models.spatial_every: the spatial model judges a track every Nth analysed frame, the frames
between carry its last judgement, and a new or rising track is judged on every frame."""

from __future__ import annotations

import itertools

from agent.config import load_config
from agent.pipeline import Pipeline


def run(clip, **models):
    config = load_config(streams=[{"url": str(clip.path), "id": "c"}],
                         models={"deep": None, **models})
    seen = []
    pipeline = Pipeline(config, on_observations=lambda obs, scores: seen.extend(
        (o.track.id, o.frame.index, s) for o, s in zip(obs, scores) if s is not None))
    pipeline.run()
    pipeline.close()
    return pipeline.scorer, seen


def test_a_calm_track_is_judged_every_nth_frame_and_carries_the_judgement_between(real_clip):
    scorer, seen = run(real_clip, spatial_every=3, deep_escalate_at=1.0)
    assert len(seen) > 20
    assert scorer.crops_scored + scorer.crops_carried == len(seen)
    # One judgement in three (each track's first frame is judged; a gap restarts the count).
    assert len(seen) / 3 - 3 <= scorer.crops_scored <= len(seen) / 3 + 3
    # A carried frame repeats its track's previous probability exactly; a judged one moves.
    probabilities = [s.by_role["spatial"] for _, _, s in seen]
    repeats = sum(a == b for a, b in itertools.pairwise(probabilities))
    assert repeats >= scorer.crops_carried - 2
    assert sum(s.spatial_carried for _, _, s in seen) == scorer.crops_carried
    all_scorer, all_seen = run(real_clip, spatial_every=1)
    assert all_scorer.crops_carried == 0 and all_scorer.crops_scored == len(all_seen)
    # The judged frames score what every-frame judging scores on them.
    judged = {(t, i): s.by_role["spatial"] for t, i, s in all_seen}
    first = seen[0]
    assert first[2].by_role["spatial"] == judged[(first[0], first[1])]


def test_a_rising_track_is_judged_on_every_frame(real_clip):
    scorer, seen = run(real_clip, spatial_every=3, deep_escalate_at=0.0)
    assert scorer.crops_carried == 0 and scorer.crops_scored == len(seen)
