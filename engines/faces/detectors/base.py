"""The detector interface."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from engines.faces.types import FaceDetections


class DetectorUnavailable(RuntimeError):
    """The configured detector cannot run here (package or model files missing)."""


@runtime_checkable
class FaceDetector(Protocol):
    """Finds faces in one BGR uint8 image. Not required to be thread-safe."""

    name: str

    def detect(self, image_bgr: np.ndarray) -> FaceDetections: ...


@runtime_checkable
class QuickDetector(FaceDetector, Protocol):
    """A detector with a cheaper pass that finds near (large) faces only, e.g. MediaPipe's
    short-range model where the full detector also runs its full-range one. The follower uses
    it between full detections while every followed face is near."""

    def detect_quick(self, image_bgr: np.ndarray) -> FaceDetections: ...
