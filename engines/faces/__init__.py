"""Face detection and alignment: the first models every frame meets."""

from engines.faces.align import AlignSpec, align_faces, similarity_from_points
from engines.faces.detectors import DetectorConfig, FaceDetector, create_detector
from engines.faces.types import FaceDetections

__all__ = [
    "AlignSpec",
    "DetectorConfig",
    "FaceDetections",
    "FaceDetector",
    "align_faces",
    "create_detector",
    "similarity_from_points",
]
