"""MediaPipe BlazeFace: the embedded default detector (weights ship in the mediapipe wheel).

Measured on the project's face media (see README, "Face detection"): the short-range model
finds close-up faces (talking heads, calls) the full-range one misses, and the full-range one
finds small faces in group shots. `range: both` runs the two and merges them.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from engines.faces.detectors.base import DetectorUnavailable
from engines.faces.native_logs import native_stderr_filtered, quiet_environment
from engines.faces.types import FaceDetections


class MediaPipeDetectorConfig(BaseModel):
    """MediaPipe BlazeFace detector (embedded, offline)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["mediapipe"] = Field("mediapipe", description="Detector plug-in name.")
    range: Literal["short", "full", "both"] = Field(
        "both",
        description="short: faces within ~2 m (calls, talking heads); full: up to ~5 m; "
        "both: run the two and merge (best recall, ~2x the cost).",
    )
    min_confidence: float = Field(0.5, ge=0.0, le=1.0, description="Detection score floor.")
    max_side: int = Field(
        640,
        ge=128,
        le=4096,
        description="Frames are downscaled to this longest side before detection. BlazeFace "
        "looks at 128-192 px anyway; resizing large frames first is cheaper than letting "
        "MediaPipe convert them.",
    )


def _import_mediapipe():
    # MediaPipe logs through glog/absl to stderr at import and graph start; keep it quiet.
    quiet_environment()
    try:
        from mediapipe.python.solutions import face_detection
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise DetectorUnavailable(
            "the mediapipe face detector needs `mediapipe==0.10.21` "
            f"(run deploy/setup.sh, or pip install --no-deps mediapipe==0.10.21): {exc}"
        ) from exc
    return face_detection


class MediaPipeDetector:
    name = "mediapipe"

    def __init__(self, config: MediaPipeDetectorConfig | None = None) -> None:
        self.config = config or MediaPipeDetectorConfig()
        face_detection = _import_mediapipe()
        selections = {"short": [0], "full": [1], "both": [0, 1]}[self.config.range]
        with native_stderr_filtered():  # the graphs log to fd 2 as they start
            self._models = [
                face_detection.FaceDetection(
                    model_selection=s, min_detection_confidence=self.config.min_confidence
                )
                for s in selections
            ]
            blank = np.zeros((64, 64, 3), np.uint8)
            for model in self._models:
                model.process(blank)  # every calculator has opened (and logged) once it returns

    def detect(self, image_bgr: np.ndarray) -> FaceDetections:
        return self._detect(image_bgr, self._models)

    def detect_quick(self, image_bgr: np.ndarray) -> FaceDetections:
        """The short-range model alone (range `both`: about a third of the cost; faces within
        ~2 m); with one range configured, that range."""
        return self._detect(image_bgr, self._models[:1])

    def _detect(self, image_bgr: np.ndarray, models: list) -> FaceDetections:
        height, width = image_bgr.shape[:2]
        scale = min(1.0, self.config.max_side / max(height, width))
        if scale < 1.0:
            size = (round(width * scale), round(height * scale))
            image_bgr = cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA)
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        # Relative coordinates from MediaPipe map straight back onto the full-size frame.
        parts = [_to_detections(m.process(rgb), width, height) for m in models]
        merged = FaceDetections.concatenate(parts)
        return merged.with_nms(0.4) if len(models) > 1 else merged

    def close(self) -> None:
        for model in self._models:
            model.close()


def _to_detections(result, width: int, height: int) -> FaceDetections:
    if not result.detections:
        return FaceDetections.empty()
    boxes, scores, keypoints = [], [], []
    for det in result.detections:
        rel = det.location_data.relative_bounding_box
        x1, y1 = rel.xmin * width, rel.ymin * height
        boxes.append([x1, y1, x1 + rel.width * width, y1 + rel.height * height])
        scores.append(det.score[0] if det.score else 0.0)
        # BlazeFace order: right eye, left eye (the subject's), nose tip, mouth centre, ears.
        kps = det.location_data.relative_keypoints
        points = np.array([[kps[i].x * width, kps[i].y * height] for i in range(4)], np.float32)
        if points[0, 0] > points[1, 0]:  # keep image-left eye first, as KEYPOINT_NAMES says
            points[[0, 1]] = points[[1, 0]]
        keypoints.append(points)
    return FaceDetections(np.array(boxes), np.array(scores), np.array(keypoints))
