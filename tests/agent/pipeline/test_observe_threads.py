"""faces.threads: a round's frames are observed in parallel, with the same result as one by one."""

from __future__ import annotations

import numpy as np
import pytest

from agent.config import load_config
from agent.pipeline import Pipeline
from engines.faces import FaceDetections
from engines.faces.detectors.pool import DetectorPool


def observed(clip, threads: int) -> tuple[Pipeline, dict]:
    seen: dict[str, list] = {}

    def collect(observations, scores):
        for obs, score in zip(observations, scores):
            seen.setdefault(obs.frame.stream_id, []).append(
                (obs.frame.index, obs.track.id, obs.box.round(1).tolist(),
                 None if score is None else round(float(score.fused), 4)))

    streams = [{"url": str(clip.path), "id": f"s{k}"} for k in range(3)]
    config = load_config(streams=streams, faces={"threads": threads}, models={"deep": None})
    pipeline = Pipeline(config, on_observations=collect)
    pipeline.run()
    return pipeline, seen


def test_two_threads_see_and_score_every_face_as_one_thread_does(real_clip):
    serial, one = observed(real_clip, 1)
    parallel, two = observed(real_clip, 2)
    assert isinstance(parallel.detector, DetectorPool) and len(parallel.detector.detectors) == 2
    assert not isinstance(serial.detector, DetectorPool)
    assert set(two) == {"s0", "s1", "s2"} and all(two[s] for s in two)
    for stream in one:
        assert sorted(two[stream]) == sorted(one[stream]), stream


def test_one_stream_builds_one_detector_and_close_frees_it(real_clip):
    config = load_config(streams=[{"url": str(real_clip.path), "id": "s0"}],
                         faces={"threads": 2}, models={"deep": None})
    pipeline = Pipeline(config)
    stats = pipeline.run()
    assert stats.frames_analysed > 0
    assert isinstance(pipeline.detector, DetectorPool) and len(pipeline.detector.detectors) == 1
    pipeline.close()
    with pytest.raises(ValueError):  # MediaPipe's graph is gone: its memory is given back
        pipeline.detector.detect(np.zeros((64, 64, 3), np.uint8))


def test_close_leaves_a_callers_detector_open(real_clip):
    class Caller:
        name = "caller"
        closed = False

        def detect(self, image):
            return FaceDetections.empty()

        def close(self):
            self.closed = True

    detector = Caller()
    config = load_config(streams=[{"url": str(real_clip.path), "id": "s0"}], models={"deep": None})
    pipeline = Pipeline(config, detector=detector)
    pipeline.run()
    pipeline.close()
    assert not detector.closed
