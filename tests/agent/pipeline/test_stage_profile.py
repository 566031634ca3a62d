"""The pipeline accounts for its time by stage (what `verity bench` prints per frame)."""

from __future__ import annotations

from agent.config import load_config
from agent.pipeline import Pipeline


def test_every_stage_that_ran_is_timed(real_clip):
    config = load_config(streams=[{"url": str(real_clip.path), "id": "c"}],
                         models={"deep": None})
    pipeline = Pipeline(config)
    stats = pipeline.run()
    stages = pipeline.stage_seconds()
    assert stats.frames_analysed > 0
    for stage in ("decode", "convert", "detect", "track", "align", "quality_gate",
                  "spatial_model", "rolling_score"):
        assert stages[stage] > 0, stage
    assert stages["deep_model"] == 0 and stages["temporal_model"] == 0
    # Detection runs on one analysed frame in faces.detect_every; tracking on every one.
    follower = pipeline.slots[0].analyzer.follower
    assert follower.detections_run < stats.frames_analysed
