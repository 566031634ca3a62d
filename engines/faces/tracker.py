"""Stable face track ids across frames: IoU matching at detections, optical flow in between.

The detector runs on every k-th analysed frame. In between, each track's keypoints are carried
forward by pyramidal Lucas-Kanade optical flow on points inside the face, so every analysed
frame still yields an aligned crop per face at a fraction of a detection's cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import linear_sum_assignment

from engines.faces.types import FaceDetections, box_iou


class TrackerConfig(BaseModel):
    """IoU tracker with optical-flow keypoint propagation between detections."""

    model_config = ConfigDict(extra="forbid")

    iou_match: float = Field(0.3, gt=0, lt=1, description="Minimum IoU to match a detection.")
    max_missed: int = Field(
        2, ge=0, description="Detection rounds a track may go unmatched before it ends."
    )
    keypoint_gain: float = Field(
        0.35,
        gt=0,
        le=1,
        description="At a detection, how far a track's keypoints move from their optical-flow "
        "position toward the detector's (1: detector only). Lower is steadier crops.",
    )

_FLOW_WINDOW = 160  # px: face windows are resampled to at most this size for optical flow
_LK_PARAMS = dict(
    winSize=(15, 15),
    maxLevel=2,
    criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03),
)


@dataclass
class Track:
    """One face followed through a stream."""

    id: int
    box: np.ndarray
    keypoints: np.ndarray
    confidence: float
    first_seen: float
    last_seen: float
    hits: int = 1
    missed: int = 0
    detected_now: bool = True
    """True when this frame's box came from the detector, False when carried by optical flow."""
    flow_points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))


class FaceTracker:
    """Follows the faces of one stream. Call once per analysed frame, in stream order."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.tracks: list[Track] = []
        self._next_id = 1
        self._prev_gray: np.ndarray | None = None

    def reset(self) -> list[Track]:
        """Forget every track (after a stream discontinuity). Returns the tracks that ended."""
        ended, self.tracks, self._prev_gray = self.tracks, [], None
        return ended

    def update_with_detections(
        self, detections: FaceDetections, gray: np.ndarray, time: float
    ) -> list[Track]:
        """Match a detector result to the tracks; returns the tracks that ended.

        Tracks are first carried to this frame by optical flow, matched to detections by IoU,
        and their keypoints then move part-way (keypoint_gain) toward the detection: the
        detector's keypoints jitter by several pixels frame to frame, the flow's do not.
        """
        predicted = self._predict(gray)
        ended: list[Track] = []
        matched_tracks: set[int] = set()
        matched_dets: set[int] = set()
        if self.tracks and len(detections):
            iou = box_iou(np.stack([t.box for t in self.tracks]), detections.boxes)
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols):
                if iou[r, c] >= self.config.iou_match:
                    self._correct(
                        self.tracks[r], detections, c, time, was_predicted=predicted[r]
                    )
                    matched_tracks.add(r)
                    matched_dets.add(c)
        survivors: list[Track] = []
        for i, track in enumerate(self.tracks):
            if i not in matched_tracks:
                track.missed += 1
                track.detected_now = False
                if track.missed > self.config.max_missed:
                    ended.append(track)
                    continue
            survivors.append(track)
        for c in range(len(detections)):
            if c not in matched_dets:
                survivors.append(
                    Track(
                        id=self._next_id,
                        box=detections.boxes[c].copy(),
                        keypoints=detections.keypoints[c].copy(),
                        confidence=float(detections.scores[c]),
                        first_seen=time,
                        last_seen=time,
                    )
                )
                self._next_id += 1
        self.tracks = survivors
        for track in self.tracks:
            track.flow_points = _flow_seed_points(gray, track)
        self._prev_gray = gray
        return ended

    def _predict(self, gray: np.ndarray) -> list[bool]:
        """Move every track by optical flow; which ones could be followed."""
        if self._prev_gray is None or self._prev_gray.shape != gray.shape:
            return [False] * len(self.tracks)
        return [_follow(self._prev_gray, gray, track) for track in self.tracks]

    def _correct(
        self, track: Track, detections: FaceDetections, index: int, time: float, was_predicted: bool
    ) -> None:
        detected_kps = detections.keypoints[index]
        detected_box = detections.boxes[index]
        gain = self.config.keypoint_gain
        scale = max(float(np.linalg.norm(detected_kps[1] - detected_kps[0])), 1.0)
        drift = float(np.abs(track.keypoints - detected_kps).max()) / scale
        if not was_predicted or drift > 0.35:  # flow lost or drifted: trust the detector
            gain = 1.0
        track.keypoints = (track.keypoints + gain * (detected_kps - track.keypoints)).astype(np.float32)
        track.box = (track.box + gain * (detected_box - track.box)).astype(np.float32)
        track.confidence = float(detections.scores[index])
        track.last_seen = time
        track.hits += 1
        track.missed = 0
        track.detected_now = True

    def propagate(self, gray: np.ndarray, time: float) -> list[Track]:
        """Carry tracks into a frame without detection; returns the tracks that were lost."""
        lost: list[Track] = []
        if self._prev_gray is None or self._prev_gray.shape != gray.shape:
            self._prev_gray = gray
            return lost
        survivors: list[Track] = []
        for track in self.tracks:
            track.detected_now = False
            if _follow(self._prev_gray, gray, track):
                track.last_seen = time
                survivors.append(track)
            else:
                lost.append(track)
        self.tracks = survivors
        self._prev_gray = gray
        return lost


def _flow_seed_points(gray: np.ndarray, track: Track) -> np.ndarray:
    """Corners inside the face box (plus the keypoints) to follow with optical flow."""
    x1, y1, x2, y2 = track.box.astype(int)
    h, w = gray.shape
    x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    points = [track.keypoints.astype(np.float32)]
    if x2 - x1 >= 8 and y2 - y1 >= 8:
        corners = cv2.goodFeaturesToTrack(
            gray[y1:y2, x1:x2], maxCorners=24, qualityLevel=0.01, minDistance=max(3, (x2 - x1) // 10)
        )
        if corners is not None:
            points.append(corners.reshape(-1, 2) + np.array([x1, y1], np.float32))
    return np.concatenate(points).astype(np.float32)


def _follow(prev_gray: np.ndarray, gray: np.ndarray, track: Track) -> bool:
    """Move a track's box and keypoints by the similarity motion of its flow points."""
    points = track.flow_points if len(track.flow_points) else track.keypoints
    # Flow is computed on a small window around the face, not the whole frame: pyramids of a
    # 720p frame cost ~5 ms per call, a face window well under 1 ms.
    x1, y1, x2, y2 = track.box
    margin = 0.6 * max(x2 - x1, y2 - y1)
    h, w = gray.shape
    left, top = int(max(x1 - margin, 0)), int(max(y1 - margin, 0))
    right, bottom = int(min(x2 + margin, w)), int(min(y2 + margin, h))
    if right - left < 16 or bottom - top < 16:
        return False
    scale = min(1.0, _FLOW_WINDOW / max(right - left, bottom - top))
    size = (max(round((right - left) * scale), 8), max(round((bottom - top) * scale), 8))
    before = cv2.resize(prev_gray[top:bottom, left:right], size, interpolation=cv2.INTER_LINEAR)
    after = cv2.resize(gray[top:bottom, left:right], size, interpolation=cv2.INTER_LINEAR)
    origin = np.array([left, top], np.float32)
    local = ((points - origin) * scale).astype(np.float32).reshape(-1, 1, 2)
    moved, status, _ = cv2.calcOpticalFlowPyrLK(before, after, local, None, **_LK_PARAMS)
    # Forward-backward check: keep points that flow back to where they started.
    back, status_back, _ = cv2.calcOpticalFlowPyrLK(after, before, moved, None, **_LK_PARAMS)
    error = np.linalg.norm(back.reshape(-1, 2) - local.reshape(-1, 2), axis=1)
    good = (status.ravel() == 1) & (status_back.ravel() == 1) & (error < 0.5)
    if good.sum() < 3:
        return False
    moved = moved.reshape(-1, 2) / scale + origin
    matrix, inliers = cv2.estimateAffinePartial2D(
        points[good], moved[good], method=cv2.RANSAC, ransacReprojThreshold=2.0
    )
    if matrix is None:
        return False
    zoom = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    if not 0.7 < zoom < 1.4:  # a face does not grow or shrink this much between frames
        return False
    x1, y1, x2, y2 = track.box
    corners = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)
    corners = corners @ matrix[:, :2].T + matrix[:, 2]
    track.box = np.array([*corners.min(0), *corners.max(0)], np.float32)
    track.keypoints = (track.keypoints @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)
    keep = good.copy()
    keep[good] = inliers.ravel().astype(bool)
    track.flow_points = moved[keep].astype(np.float32)
    return True
