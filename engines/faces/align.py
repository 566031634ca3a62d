"""Landmark alignment: a similarity transform from detected keypoints to a canonical crop.

The canonical face is expressed in "face units": the eyes one unit apart at (-0.5, 0) and
(0.5, 0). A crop is a square `scale` units wide, centred `center_y` units below the eye line,
resampled to `size` pixels. Models record their AlignSpec in their model card, so training
crops and run-time crops are made by this same function.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

# Median keypoint positions of real faces in the project's face media, in face units
# (443 faces, mediapipe detector). Its median face box spans x -1.17..1.17 and y -0.62..1.77,
# so a crop 3.0 units wide centred at y 0.55 holds the face with a ~30% margin.
CANONICAL_KEYPOINTS = np.array(
    [[-0.5, 0.0], [0.5, 0.0], [0.0, 0.55], [0.0, 1.07]], dtype=np.float32
)


@dataclass(frozen=True)
class AlignSpec:
    """How a model wants its face crops: output size, crop width and centre in face units."""

    size: int = 128
    scale: float = 3.0
    center_y: float = 0.55

    def destination_points(self) -> np.ndarray:
        """Where CANONICAL_KEYPOINTS land in the output crop, in pixels."""
        centred = CANONICAL_KEYPOINTS - np.array([0.0, self.center_y], np.float32)
        return ((centred / self.scale) + 0.5) * self.size

    def widened(self, factor: float, size: int | None = None) -> AlignSpec:
        """The same crop centre with `factor` times the context (for training-time jitter)."""
        return AlignSpec(size or round(self.size * factor), self.scale * factor, self.center_y)

    def to_dict(self) -> dict:
        return asdict(self)


def similarity_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src to dst.

    Returns a 2x3 matrix for cv2.warpAffine. Solved in closed form: it runs per face per
    frame, and the 4-parameter linear system is tiny.
    """
    src = np.asarray(src, np.float64).reshape(-1, 2)
    dst = np.asarray(dst, np.float64).reshape(-1, 2)
    n = len(src)
    # [x -y 1 0][a b tx ty]^T = u ;  [y x 0 1][a b tx ty]^T = v
    design = np.zeros((2 * n, 4))
    design[0::2] = np.column_stack([src[:, 0], -src[:, 1], np.ones(n), np.zeros(n)])
    design[1::2] = np.column_stack([src[:, 1], src[:, 0], np.zeros(n), np.ones(n)])
    a, b, tx, ty = np.linalg.lstsq(design, dst.reshape(-1), rcond=None)[0]
    return np.array([[a, -b, tx], [b, a, ty]], np.float32)


def recrop_matrix(outer: AlignSpec, inner: AlignSpec) -> np.ndarray:
    """2x3 matrix from one aligned crop's pixels to another crop's of the same face: how a
    model's crop is cut from a wider crop another model was given."""
    return similarity_from_points(outer.destination_points(), inner.destination_points())


def recrop(crops: np.ndarray, outer: AlignSpec, inner: AlignSpec) -> np.ndarray:
    """`inner` crops (N, size, size, 3) cut from `outer` crops of the same faces."""
    matrix = recrop_matrix(outer, inner)
    out = np.empty((len(crops), inner.size, inner.size, crops.shape[-1]), crops.dtype)
    for i, crop in enumerate(crops):
        out[i] = cv2.warpAffine(crop, matrix, (inner.size, inner.size), flags=cv2.INTER_AREA,
                                borderMode=cv2.BORDER_REPLICATE)
    return out


def alignment_matrix(keypoints: np.ndarray, spec: AlignSpec) -> np.ndarray:
    """2x3 matrix taking image pixels to the spec's crop, from one face's 4 keypoints."""
    return similarity_from_points(keypoints, spec.destination_points())


def align_faces(image: np.ndarray, keypoints: np.ndarray, spec: AlignSpec) -> np.ndarray:
    """Aligned crops (N, size, size, 3) uint8 for each face's (4, 2) keypoints."""
    keypoints = np.asarray(keypoints, np.float32).reshape(-1, 4, 2)
    out = np.empty((len(keypoints), spec.size, spec.size, image.shape[2]), image.dtype)
    for i, points in enumerate(keypoints):
        out[i] = cv2.warpAffine(
            image,
            alignment_matrix(points, spec),
            (spec.size, spec.size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
        )
    return out


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (..., 2) points."""
    points = np.asarray(points, np.float32)
    return points @ matrix[:, :2].T + matrix[:, 2]
