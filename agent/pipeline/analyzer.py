"""Per-stream analysis state: detection every k-th frame, tracking between, aligned crops."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from agent.config import FacesConfig
from agent.faces.quality import QualityGate, QualityReport
from agent.faces.tracker import FaceTracker, Track
from agent.ingest import Frame
from engines.faces import AlignSpec, FaceDetector, align_faces


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
        self.detector = detector
        self.align = align
        self.gate = gate or QualityGate(config.quality)
        self.tracker = FaceTracker(config.tracker)
        self.frames_seen = 0
        self.detections_run = 0
        self._segment: int | None = None
        self._since_detection = 0

    def observe(self, frame: Frame) -> tuple[list[FaceObservation], list[Track]]:
        """Faces in this frame, and the tracks that ended with it."""
        ended: list[Track] = []
        if self._segment is not None and frame.segment != self._segment:
            ended += self.tracker.reset()  # a reconnection breaks continuity
            self._since_detection = 0
        self._segment = frame.segment
        self.frames_seen += 1
        gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
        if self._since_detection == 0 or not self.tracker.tracks:
            detections = self.detector.detect(frame.image)
            if len(detections) > self.config.max_faces:
                detections = detections[np.argsort(-detections.interocular)[: self.config.max_faces]]
            ended += self.tracker.update_with_detections(detections, gray, frame.time)
            self.detections_run += 1
            self._since_detection = 0
        else:
            ended += self.tracker.propagate(gray, frame.time)
        self._since_detection = (self._since_detection + 1) % self.config.detect_every
        tracks = list(self.tracker.tracks)
        if not tracks:
            return [], ended
        # Tracks that were not matched this round keep their last position: skip them.
        live = [t for t in tracks if t.last_seen == frame.time]
        if not live:
            return [], ended
        crops = align_faces(frame.image, np.stack([t.keypoints for t in live]), self.align)
        observations = [
            FaceObservation(
                frame=frame,
                track=track,
                box=track.box.copy(),
                keypoints=track.keypoints.copy(),
                crop=crop,
                quality=self.gate.assess(crop, track.keypoints),
            )
            for track, crop in zip(live, crops)
        ]
        return observations, ended

    def finish(self) -> list[Track]:
        """The stream ended: every open track ends."""
        return self.tracker.reset()
