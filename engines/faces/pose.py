"""Head turn from the detector's keypoints (the quality gate's `faces.quality.max_yaw`).

`yaw_ratio`: where the nose sits along the eye line, in eye distances from the eyes' midpoint
(0 frontal, growing as the head turns). How turned the training faces were, which chose the
gate's default, is measured by `python -m engines.data.pose_survey`.
"""

from __future__ import annotations

import numpy as np


def yaw_ratio(keypoints: np.ndarray) -> np.ndarray:
    """|nose offset along the eye line| / eye distance, for keypoints (..., 4, 2) ordered
    left eye, right eye, nose, mouth; one value per face."""
    k = np.asarray(keypoints, np.float32)
    eye_left, eye_right, nose = k[..., 0, :], k[..., 1, :], k[..., 2, :]
    interocular = np.maximum(np.linalg.norm(eye_right - eye_left, axis=-1), 1e-6)
    axis = (eye_right - eye_left) / interocular[..., None]
    offset = ((nose - (eye_left + eye_right) / 2) * axis).sum(-1)
    return np.abs(offset) / interocular
