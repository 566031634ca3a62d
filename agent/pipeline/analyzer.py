"""Per-stream analysis state: detection every k-th frame, tracking between, aligned crops."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from agent.config import FacesConfig
from agent.faces.quality import QualityGate, QualityReport
from agent.ingest import Frame
from engines.faces import AlignSpec, FaceDetector
from engines.faces.follower import FaceFollower
from engines.faces.tracker import FaceTracker, Track


@dataclass
class FaceObservation:
    """One tracked face in one analysed frame."""

    frame: Frame
    track: Track
    box: np.ndarray
    keypoints: np.ndarray
    crop: np.ndarray
    quality: QualityReport


class StreamAnalyzer:
    """Turns one stream's frames into face observations. Not thread-safe; one per stream."""

    def __init__(
        self,
        stream_id: str,
        config: FacesConfig,
        detector: FaceDetector,
        align: AlignSpec,
        gate: QualityGate | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.config = config
        self.gate = gate or QualityGate(config.quality)
        self.follower = FaceFollower(detector, FaceTracker(config.tracker), align,
                                     config.detect_every, config.max_faces,
                                     full_every=config.full_detect_every,
                                     quick_min_face=config.quick_min_face,
                                     still_shift=config.still_shift)
        self.frames_seen = 0
        self.quality_seconds = 0.0
        self.convert_seconds = 0.0
        """CPU time converting this stream's analysed frames to BGR."""
        self._segment: int | None = None

    @property
    def detections_run(self) -> int:
        return self.follower.detections_run

    def observe(self, frame: Frame) -> tuple[list[FaceObservation], list[Track]]:
        """Faces in this frame, and the tracks that ended with it."""
        ended: list[Track] = []
        if self._segment is not None and frame.segment != self._segment:
            ended += self.follower.restart()  # a reconnection breaks continuity
        self._segment = frame.segment
        self.frames_seen += 1
        image = frame.image
        self.convert_seconds += frame.convert_seconds
        faces, lost = self.follower.step(image, frame.time)
        started = time.perf_counter()
        observations = [
            FaceObservation(
                frame=frame,
                track=face.track,
                box=face.box,
                keypoints=face.keypoints,
                crop=face.crop,
                quality=self.gate.assess(face.crop, face.keypoints),
            )
            for face in faces
        ]
        self.quality_seconds += time.perf_counter() - started
        return observations, ended + lost

    def finish(self) -> list[Track]:
        """The stream ended: every open track ends."""
        return self.follower.tracker.reset()
