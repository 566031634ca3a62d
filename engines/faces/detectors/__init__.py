"""Face detector plug-ins, chosen by the `type` field of their config (like Frigate's detectors).

- `mediapipe`: the embedded default; BlazeFace weights ship inside the mediapipe wheel, so it
  works offline on a fresh machine.
- `insightface`: SCRFD from an insightface model pack (e.g. buffalo_l) placed in a models
  folder by the user; never downloaded.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from engines.faces.detectors.base import FaceDetector
from engines.faces.detectors.insightface import InsightFaceDetectorConfig
from engines.faces.detectors.mediapipe import MediaPipeDetectorConfig

DetectorConfig = Annotated[
    Union[MediaPipeDetectorConfig, InsightFaceDetectorConfig], Field(discriminator="type")
]


def create_detector(config: MediaPipeDetectorConfig | InsightFaceDetectorConfig) -> FaceDetector:
    """Build the detector a config names. Heavy imports happen here, not at import time."""
    if isinstance(config, MediaPipeDetectorConfig):
        from engines.faces.detectors.mediapipe import MediaPipeDetector

        return MediaPipeDetector(config)
    if isinstance(config, InsightFaceDetectorConfig):
        from engines.faces.detectors.insightface import InsightFaceDetector

        return InsightFaceDetector(config)
    raise TypeError(f"unknown detector config {type(config).__name__}")


__all__ = [
    "DetectorConfig",
    "FaceDetector",
    "InsightFaceDetectorConfig",
    "MediaPipeDetectorConfig",
    "create_detector",
]
