"""SCRFD detector from an insightface model pack placed in a local models folder.

insightface model packs (buffalo_l, buffalo_s, antelopev2, ...) are not shipped with Verity
and are never downloaded by it: their weights carry a non-commercial research licence and
this agent must run offline. Put the unpacked pack under `models_dir/<pack>/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from engines.faces.detectors.base import DetectorUnavailable
from engines.faces.types import FaceDetections


class InsightFaceDetectorConfig(BaseModel):
    """SCRFD face detector from a local insightface model pack."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["insightface"] = Field("insightface", description="Detector plug-in name.")
    models_dir: Path = Field(description="Folder holding unpacked model packs.")
    pack: str = Field("buffalo_l", description="Pack folder name under models_dir.")
    input_size: int = Field(640, ge=128, le=1920, description="Square detector input (px).")
    min_confidence: float = Field(0.5, ge=0.0, le=1.0, description="Detection score floor.")
    providers: list[str] = Field(
        default_factory=lambda: ["CPUExecutionProvider"],
        description="ONNX Runtime execution providers, in order of preference.",
    )


def find_detector_file(models_dir: Path, pack: str) -> Path:
    """The pack's detection ONNX file (SCRFD packs name it det_*.onnx)."""
    pack_dir = Path(models_dir).expanduser() / pack
    if not pack_dir.is_dir():
        raise DetectorUnavailable(
            f"insightface pack folder {pack_dir} does not exist: unpack the `{pack}` pack "
            "there (Verity never downloads model weights)"
        )
    candidates = sorted(pack_dir.glob("det_*.onnx")) or sorted(pack_dir.glob("*det*.onnx"))
    if not candidates:
        raise DetectorUnavailable(f"no detection model (det_*.onnx) in {pack_dir}")
    return candidates[0]


class InsightFaceDetector:
    name = "insightface"

    def __init__(self, config: InsightFaceDetectorConfig) -> None:
        self.config = config
        model_file = find_detector_file(config.models_dir, config.pack)
        try:
            from insightface.model_zoo import get_model
        except ImportError as exc:
            raise DetectorUnavailable(
                "the insightface detector needs the insightface package "
                f"(pip install --no-deps insightface): {exc}"
            ) from exc
        # A direct .onnx path: insightface infers the role from the signature, no download.
        self._model = get_model(str(model_file), providers=list(config.providers))
        if self._model is None or not hasattr(self._model, "detect"):
            raise DetectorUnavailable(f"{model_file} is not a face detection model")
        self._model.prepare(
            ctx_id=-1,
            input_size=(config.input_size, config.input_size),
            det_thresh=config.min_confidence,
        )

    def detect(self, image_bgr: np.ndarray) -> FaceDetections:
        boxes, kpss = self._model.detect(image_bgr)
        if boxes is None or len(boxes) == 0:
            return FaceDetections.empty()
        if kpss is None:
            raise DetectorUnavailable("this insightface detector gives no keypoints")
        # SCRFD 5 points: eye, eye, nose, mouth corner, mouth corner -> 4 canonical points.
        kpss = np.asarray(kpss, np.float32)
        # Image-left eye first, whatever the subject's head roll.
        eyes = np.take_along_axis(kpss[:, :2], np.argsort(kpss[:, :2, 0], axis=1)[..., None], 1)
        mouth = kpss[:, 3:5].mean(axis=1, keepdims=True)
        keypoints = np.concatenate([eyes, kpss[:, 2:3], mouth], axis=1)
        return FaceDetections(boxes[:, :4], boxes[:, 4], keypoints)
