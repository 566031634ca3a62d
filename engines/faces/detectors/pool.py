"""Several instances of one detector behind one interface, so frames can be detected from
several threads at once (a detector instance is not thread-safe; MediaPipe's graphs and
ONNX Runtime release the GIL while they run)."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator

import numpy as np

from engines.faces.detectors.base import FaceDetector, QuickDetector
from engines.faces.types import FaceDetections


class DetectorPool:
    """Each call takes a free instance and gives it back: at most `size` detections at once.

    Instances are made when first needed (one at the start), so a pool sized for several
    threads that only ever sees one frame at a time (an agent watching one stream) holds one
    detector's models, not `size`."""

    def __init__(self, create: Callable[[], FaceDetector], size: int,
                 first: FaceDetector | None = None) -> None:
        first = first if first is not None else create()
        self.name = first.name
        self.size = max(1, size)
        self.detectors: list[FaceDetector] = [first]
        self._create = create
        self._grow_lock = threading.Lock()
        self._free: queue.SimpleQueue[FaceDetector] = queue.SimpleQueue()
        self._free.put(first)

    @contextlib.contextmanager
    def _borrowed(self) -> Iterator[FaceDetector]:
        try:
            detector = self._free.get_nowait()
        except queue.Empty:
            detector = self._grown() or self._free.get()
        try:
            yield detector
        finally:
            self._free.put(detector)

    def _grown(self) -> FaceDetector | None:
        """A new instance while the pool is below its size, else None (wait for a free one)."""
        with self._grow_lock:
            if len(self.detectors) >= self.size:
                return None
            detector = self._create()
            self.detectors.append(detector)
            return detector

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
    """Up to `size` detectors from `create`; a QuickDetector pool when they have a quick pass
    (every instance comes from one factory, so the first tells)."""
    first = create()
    kind = QuickDetectorPool if isinstance(first, QuickDetector) else DetectorPool
    return kind(create, size, first)
