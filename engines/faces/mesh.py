"""MediaPipe Face Mesh: 468 dense landmarks per face (used for self-blended-image masks).

Torch-free; mediapipe is imported when a FaceMesh is built. Works on a BGR uint8 image and
returns pixel coordinates of that image.
"""

from __future__ import annotations

import cv2
import numpy as np

from engines.faces.detectors.base import DetectorUnavailable
from engines.faces.native_logs import native_stderr_filtered, quiet_environment

NUM_MESH_POINTS = 468
_face_seen = False  # MediaPipe has logged its once-per-process warning about the first face


def _import_face_mesh():
    quiet_environment()
    try:
        from mediapipe.python.solutions import face_mesh
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise DetectorUnavailable(
            f"the face mesh needs `mediapipe==0.10.21` (run deploy/setup.sh): {exc}"
        ) from exc
    return face_mesh


class FaceMesh:
    """468-point face mesh on still images (each call is independent).

    landmarks(image) -> (F, 468, 2) float32 pixel coordinates, F <= max_faces, largest first.
    """

    def __init__(self, max_faces: int = 1, min_confidence: float = 0.5) -> None:
        face_mesh = _import_face_mesh()
        with native_stderr_filtered():  # the graph logs to fd 2 as it starts
            self._mesh = face_mesh.FaceMesh(
                static_image_mode=True,
                max_num_faces=max_faces,
                refine_landmarks=False,
                min_detection_confidence=min_confidence,
            )
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))

    def landmarks(self, image_bgr: np.ndarray) -> np.ndarray:
        global _face_seen
        height, width = image_bgr.shape[:2]
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        if _face_seen:
            result = self._mesh.process(rgb)
        else:  # the first face found logs a warning (once per process) to fd 2
            with native_stderr_filtered():
                result = self._mesh.process(rgb)
            _face_seen = bool(result.multi_face_landmarks)
        if not result.multi_face_landmarks:
            return np.zeros((0, NUM_MESH_POINTS, 2), np.float32)
        faces = np.array(
            [
                [[p.x * width, p.y * height] for p in face.landmark[:NUM_MESH_POINTS]]
                for face in result.multi_face_landmarks
            ],
            np.float32,
        )
        spans = np.ptp(faces, axis=1).prod(axis=1)
        return faces[np.argsort(-spans)]

    def largest(self, image_bgr: np.ndarray) -> np.ndarray | None:
        """The largest face's (468, 2) landmarks, or None."""
        faces = self.landmarks(image_bgr)
        return faces[0] if len(faces) else None

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> FaceMesh:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
