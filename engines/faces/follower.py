"""Faces followed through a stream's frames: detect every k-th frame, track in between, align.

The one detect-track-align loop: the agent's per-stream analysis and the training clip cache
both run it, so training crops move exactly like run-time crops.
"""

from __future__ import annotations

from dataclasses import dataclass

import time as _time

import cv2
import numpy as np

from engines.faces.align import AlignSpec, align_faces
from engines.faces.detectors.base import FaceDetector, QuickDetector
from engines.faces.tracker import FaceTracker, Track


@dataclass
class FollowedFace:
    """One tracked face in one frame, with its crop."""

    track: Track
    box: np.ndarray
    keypoints: np.ndarray
    crop: np.ndarray


class FaceFollower:
    """Not thread-safe; one per stream (or per clip)."""

    def __init__(
        self, detector: FaceDetector, tracker: FaceTracker, align: AlignSpec, detect_every: int,
        max_faces: int | None = None, *, full_every: int = 1, quick_min_face: float = 0.18,
        still_shift: float = 0.0,
    ) -> None:
        self.detector = detector
        self.tracker = tracker
        self.align = align
        self.detect_every = max(1, detect_every)
        self.max_faces = max_faces
        self.full_every = max(1, full_every)
        """With a QuickDetector: every k-th detection is a full one, the others quick while
        every followed face is near (1: always full)."""
        self.quick_min_face = quick_min_face
        """A face is near when its box's height is at least this share of the frame's longer
        side (MediaPipe's short range pads the frame to a square and lost the test face below
        ~0.14 of it)."""
        self.still_shift = still_shift
        """A quick detection is skipped while every followed face has moved less than this share
        of its box height since the last detection, as far as optical flow has followed it (up to
        the previous analysed frame; 0: never): on a still scene the quick pass only re-confirms
        what the flow already follows. The full detection, which finds new and distant faces,
        keeps its schedule."""
        self._has_quick = isinstance(detector, QuickDetector)  # a Protocol check: once, not per frame
        self.detections_run = 0
        self.quick_detections_run = 0
        self.detections_skipped = 0
        self._rounds = 0  # detection rounds due, run or skipped: the full detection's schedule
        self._anchors: dict[int, tuple[float, float, float]] = {}  # track id -> centre x, y, height
        self._since_detection = 0
        self.seconds = {"detect": 0.0, "track": 0.0, "align": 0.0}
        """Time spent per stage (for profiles): detection, tracking (grey conversion, optical
        flow, matching), alignment."""

    def step(self, image: np.ndarray, time: float) -> tuple[list[FollowedFace], list[Track]]:
        """The faces seen in this frame, and the tracks that ended with it."""
        ended: list[Track] = []
        clock = _time.perf_counter
        started = clock()
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        due = self._since_detection == 0 or not self.tracker.tracks
        quick = due and self._quick_now(max(image.shape[:2]))
        if quick and self._still():
            self._rounds += 1
            self.detections_skipped += 1
            due = False
        if due:
            detect_started = clock()
            if quick:
                detections = self.detector.detect_quick(image)  # type: ignore[attr-defined]
                self.quick_detections_run += 1
            else:
                detections = self.detector.detect(image)
            if self.max_faces is not None and len(detections) > self.max_faces:
                detections = detections[np.argsort(-detections.interocular)[: self.max_faces]]
            self.seconds["detect"] += clock() - detect_started
            started += clock() - detect_started  # the rest is tracking
            ended += self.tracker.update_with_detections(detections, gray, time)
            self.detections_run += 1
            self._rounds += 1
            self._since_detection = 0
            if self.still_shift:
                self._anchors = {t.id: _centre_and_height(t.box) for t in self.tracker.tracks}
        else:
            ended += self.tracker.propagate(gray, time)
        self._since_detection = (self._since_detection + 1) % self.detect_every
        # Tracks that were not matched this round keep their last position: skip them.
        live = [t for t in self.tracker.tracks if t.last_seen == time]
        self.seconds["track"] += clock() - started
        if not live:
            return [], ended
        align_started = clock()
        keypoints = np.stack([t.keypoints for t in live]).astype(np.float32)
        crops = align_faces(image, keypoints, self.align)
        self.seconds["align"] += clock() - align_started
        faces = [FollowedFace(t, t.box.copy(), k.copy(), c) for t, k, c in zip(live, keypoints, crops)]
        return faces, ended

    def _quick_now(self, frame_side: int) -> bool:
        """The quick pass, when allowed: not the periodic full detection (which finds new or
        distant faces), and no followed face so small that the quick pass could lose it."""
        if self.full_every == 1 or not self._has_quick:
            return False
        if self._rounds % self.full_every == 0:
            return False
        least = self.quick_min_face * frame_side
        return all(t.box[3] - t.box[1] >= least for t in self.tracker.tracks)

    def _still(self) -> bool:
        """Every followed face within still_shift of where the last detection left it."""
        if not self.still_shift or not self.tracker.tracks:
            return False
        for track in self.tracker.tracks:
            anchor = self._anchors.get(track.id)
            if anchor is None or track.missed:  # new since, or unconfirmed: let the detector look
                return False
            x, y, height = _centre_and_height(track.box)
            if np.hypot(x - anchor[0], y - anchor[1]) > self.still_shift * anchor[2] \
                    or abs(height - anchor[2]) > self.still_shift * anchor[2]:
                return False
        return True

    def restart(self) -> list[Track]:
        """Continuity broke (a reconnection): every open track ends, detection runs next."""
        self._since_detection = 0
        self._anchors = {}
        return self.tracker.reset()


def _centre_and_height(box: np.ndarray) -> tuple[float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return (x1 + x2) / 2, (y1 + y2) / 2, max(y2 - y1, 1.0)
