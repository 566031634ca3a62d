"""The quality gate: faces Verity cannot judge get the verdict "unknown", never "real".

Checks are cheap (no model): face size from the eye distance, sharpness from the variance of
the Laplacian of the aligned crop, a yaw proxy from where the nose sits between the eyes, and
brightness. Thresholds are config (faces.quality).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from agent.config import QualityConfig
from engines.faces.pose import yaw_ratio


@dataclass(frozen=True)
class QualityReport:
    ok: bool
    reasons: tuple[str, ...]
    """Why the face cannot be judged: too_small, too_blurred, turned_away, too_dark (and,
    set by the pipeline after scoring, out_of_distribution)."""
    interocular_px: float
    sharpness: float
    yaw: float
    brightness: float


class QualityGate:
    def __init__(self, config: QualityConfig | None = None) -> None:
        self.config = config or QualityConfig()

    def assess(self, crop_bgr: np.ndarray, keypoints: np.ndarray) -> QualityReport:
        """Judge one aligned crop and the frame keypoints it was cut with."""
        cfg = self.config
        eye_left, eye_right, _nose, _mouth = np.asarray(keypoints, np.float32)
        interocular = float(np.linalg.norm(eye_right - eye_left))
        yaw = float(yaw_ratio(keypoints))
        gray = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2GRAY)
        centre = gray[gray.shape[0] // 4 : 3 * gray.shape[0] // 4, gray.shape[1] // 4 : 3 * gray.shape[1] // 4]
        sharpness = float(cv2.Laplacian(centre, cv2.CV_32F).var())
        brightness = float(centre.mean())
        reasons = []
        if interocular < cfg.min_interocular_px:
            reasons.append("too_small")
        if sharpness < cfg.min_sharpness:
            reasons.append("too_blurred")
        if yaw > cfg.max_yaw:
            reasons.append("turned_away")
        if brightness < cfg.min_brightness:
            reasons.append("too_dark")
        return QualityReport(not reasons, tuple(reasons), interocular, sharpness, yaw, brightness)
