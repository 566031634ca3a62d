"""A frame whose analysis fails is logged and skipped; its stream and every other go on."""

from __future__ import annotations

import logging

from agent.config import load_config
from agent.pipeline import Pipeline


def test_a_failing_frame_is_skipped_and_named_and_the_streams_go_on(real_clip, caplog):
    seen: dict[str, set[int]] = {}

    def collect(observations, scores):
        for obs in observations:
            seen.setdefault(obs.frame.stream_id, set()).add(obs.frame.index)

    broken = {"calls": 0}

    def transform(image):
        broken["calls"] += 1
        if broken["calls"] in (2, 5):  # two frames, of whichever stream comes then
            raise ValueError("picture unreadable")
        return image

    streams = [{"url": str(real_clip.path), "id": f"s{k}"} for k in range(2)]
    config = load_config(streams=streams, faces={"threads": 1}, models={"deep": None})
    pipeline = Pipeline(config, on_observations=collect, frame_transform=transform)
    with caplog.at_level(logging.ERROR, logger="agent.pipeline"):
        stats = pipeline.run()
    pipeline.close()

    failed = {slot.config.id: slot.frames_failed for slot in pipeline.slots}
    assert sum(failed.values()) == 2
    messages = [r.getMessage() for r in caplog.records]
    assert sum("could not be analysed" in m for m in messages) == 2
    assert all("picture unreadable" in r.exc_text for r in caplog.records if r.exc_text)
    # Every other frame of both streams was analysed and had its face.
    per_stream = stats.frames_analysed // 2
    assert {s: len(v) for s, v in seen.items()} == {s: per_stream - failed[s] for s in ("s0", "s1")}
