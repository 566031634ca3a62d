"""Several instances of one detector behind one interface, so frames can be detected from
several threads at once (a detector instance is not thread-safe; MediaPipe's graphs and
ONNX Runtime release the GIL while they run)."""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Callable, Iterator

import numpy as np

from engines.faces.detectors.base import FaceDetector, QuickDetector
from engines.faces.types import FaceDetections


class DetectorPool:
    """Each call takes a free instance and gives it back: at most `size` detections at once."""

    def __init__(self, detectors: list[FaceDetector]) -> None:
        if not detectors:
            raise ValueError("a detector pool needs at least one detector")
        self.name = detectors[0].name
        self.detectors = list(detectors)
        self._free: queue.SimpleQueue[FaceDetector] = queue.SimpleQueue()
        for detector in detectors:
            self._free.put(detector)

    @contextlib.contextmanager
    def _borrowed(self) -> Iterator[FaceDetector]:
        detector = self._free.get()
        try:
            yield detector
        finally:
            self._free.put(detector)

    def detect(self, image_bgr: np.ndarray) -> FaceDetections:
        with self._borrowed() as detector:
            return detector.detect(image_bgr)

    def close(self) -> None:
        for detector in self.detectors:
            close = getattr(detector, "close", None)
            if close is not None:
                close()


class QuickDetectorPool(DetectorPool):
    """A pool of detectors that have a quick pass (QuickDetector)."""

    def detect_quick(self, image_bgr: np.ndarray) -> FaceDetections:
        with self._borrowed() as detector:
            return detector.detect_quick(image_bgr)  # type: ignore[attr-defined]


def detector_pool(create: Callable[[], FaceDetector], size: int) -> DetectorPool:
    """`size` detectors from `create`; a QuickDetector pool when they have a quick pass."""
    detectors = [create() for _ in range(max(1, size))]
    quick = all(isinstance(d, QuickDetector) for d in detectors)
    return (QuickDetectorPool if quick else DetectorPool)(detectors)
