"""`FaceDetections`: the one type every detector returns and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Keypoint order shared by all detectors (image left/right, not the subject's):
KEYPOINT_NAMES = ("eye_left", "eye_right", "nose", "mouth")
NUM_KEYPOINTS = len(KEYPOINT_NAMES)


@dataclass
class FaceDetections:
    """Faces found in one image, in pixel coordinates of that image.

    boxes: (N, 4) float32 x1, y1, x2, y2. scores: (N,) float32 in [0, 1].
    keypoints: (N, 4, 2) float32 in KEYPOINT_NAMES order.
    """

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    keypoints: np.ndarray = field(
        default_factory=lambda: np.zeros((0, NUM_KEYPOINTS, 2), np.float32)
    )

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, np.float32).reshape(-1)
        self.keypoints = np.asarray(self.keypoints, np.float32).reshape(-1, NUM_KEYPOINTS, 2)
        n = len(self.boxes)
        if len(self.scores) != n or len(self.keypoints) != n:
            raise ValueError(
                f"FaceDetections: {n} boxes, {len(self.scores)} scores, "
                f"{len(self.keypoints)} keypoint sets; all must match"
            )

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: int | slice | np.ndarray) -> FaceDetections:
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return FaceDetections(self.boxes[index], self.scores[index], self.keypoints[index])

    @classmethod
    def empty(cls) -> FaceDetections:
        return cls()

    @classmethod
    def concatenate(cls, parts: list[FaceDetections]) -> FaceDetections:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.keypoints for p in parts]),
        )

    @property
    def interocular(self) -> np.ndarray:
        """Distance between the eyes in pixels: the face's scale, robust to box conventions."""
        return np.linalg.norm(self.keypoints[:, 1] - self.keypoints[:, 0], axis=1)

    def with_nms(self, iou_threshold: float = 0.4) -> FaceDetections:
        """Greedy non-maximum suppression, highest score first."""
        if len(self) < 2:
            return self
        order = np.argsort(-self.scores)
        keep: list[int] = []
        while len(order):
            best = int(order[0])
            keep.append(best)
            rest = order[1:]
            order = rest[box_iou(self.boxes[best : best + 1], self.boxes[rest])[0] < iou_threshold]
        return self[np.array(keep)]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix between (N, 4) and (M, 4) x1y1x2y2 boxes."""
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-6)
