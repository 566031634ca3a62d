"""Face detection, tracking and the quality gate."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from engines.faces.detectors import DetectorConfig, MediaPipeDetectorConfig
from engines.faces.tracker import TrackerConfig

__all__ = ["FacesConfig", "QualityConfig", "TrackerConfig"]


class QualityConfig(BaseModel):
    """Faces failing any check get the verdict "unknown", never "real"."""

    model_config = ConfigDict(extra="forbid")

    min_interocular_px: float = Field(
        16.0, ge=0, description="Eye-to-eye distance in pixels below which a face is too small."
    )
    min_sharpness: float = Field(
        15.0, ge=0, description="Variance of the Laplacian of the aligned crop; lower is blurred."
    )
    # 0.6 admits 99.6% of the temporal model's training frames, 0.35 refused
    # 4.7% (`python -m engines.data.pose_survey`), and broke the windows of turned faces.
    max_yaw: float = Field(
        0.6, gt=0, description="|nose offset| / eye distance above which the face is too turned."
    )
    min_brightness: float = Field(
        25.0, ge=0, le=255, description="Mean grey level of the crop below which it is too dark."
    )


class FacesConfig(BaseModel):
    """How faces are found and followed."""

    model_config = ConfigDict(extra="forbid")

    detector: DetectorConfig = Field(
        default_factory=MediaPipeDetectorConfig, description="Face detector plug-in."
    )
    detect_every: int = Field(
        3, ge=1, le=100, description="Run the detector on every k-th analysed frame; track between."
    )
    # 4: the same frames followed as full detection every time on the project's face videos
    # (4622/4625 real, 2166/2173 fake), 40% less detector time
    # (`python -m engines.data.detector_recall --followed`).
    full_detect_every: int = Field(
        4, ge=1, le=100,
        description="Where the detector has a quick pass (mediapipe with range both: its "
        "short-range model alone), every k-th detection of a stream is a full one and the "
        "others quick, while every followed face is near (quick_min_face); 1: always full.",
    )
    quick_min_face: float = Field(
        0.18, gt=0, le=1,
        description="A followed face whose box height is under this share of the frame's "
        "longer side makes every detection of its stream a full one: MediaPipe's short range "
        "lost faces below ~0.14 of it.",
    )
    # 2 on two cores (`verity bench`, one run each): 8 streams' capacity 34.9 -> 41.2 analysed
    # fps, 24 streams at 5 fps 20.2 -> 24.2; a second detector costs ~50-100 MB.
    still_shift: float = Field(
        0.05, ge=0, le=1,
        description="A quick detection is skipped while every followed face has moved less "
        "than this share of its box height since the stream's last detection (optical flow "
        "follows it meanwhile); the full detection, which finds new and distant faces, keeps "
        "its schedule. 0: never skip.",
    )
    threads: int = Field(
        2, ge=1, le=16,
        description="Threads that detect, track and align a round's frames (one frame per "
        "stream) in parallel, each with its own detector instance; the models then score the "
        "round's faces together.",
    )
    max_faces: int = Field(16, ge=1, le=256, description="Faces scored per frame at most.")
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
