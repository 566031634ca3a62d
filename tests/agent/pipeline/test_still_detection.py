"""faces.still_shift: on a still face the agent skips the quick detections, and follows it all the same."""

from __future__ import annotations

from agent.config import load_config
from agent.pipeline import Pipeline


def followed(clip, still_shift: float) -> tuple[Pipeline, list[int]]:
    frames: list[int] = []

    def collect(observations, scores):
        frames.extend(obs.frame.index for obs in observations)

    config = load_config(streams=[{"url": str(clip.path), "id": "cam"}],
                         faces={"still_shift": still_shift}, models={"deep": None})
    pipeline = Pipeline(config, on_observations=collect)
    pipeline.run()
    pipeline.close()
    return pipeline, frames


def test_a_still_face_costs_fewer_detections_and_no_followed_frame(real_clip):
    every, seen_every = followed(real_clip, 0.0)
    still, seen_still = followed(real_clip, 0.05)
    before, after = every.slots[0].analyzer.follower, still.slots[0].analyzer.follower
    assert before.detections_skipped == 0
    assert after.detections_skipped > 0
    assert after.detections_run + after.detections_skipped == before.detections_run
    rounds = before.detections_run
    # The full detection keeps its schedule: at least 1 round in faces.full_detect_every (4).
    assert after.detections_run - after.quick_detections_run >= -(-rounds // 4)
    assert seen_still == seen_every  # the same frames had their face
