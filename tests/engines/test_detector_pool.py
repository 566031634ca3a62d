"""A detector pool lends each instance to one thread at a time and keeps the quick pass."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from engines.faces import FaceDetections
from engines.faces.detectors.base import QuickDetector
from engines.faces.detectors.pool import detector_pool


class Recording:
    """Fails loudly if two threads are inside it at once, as a real detector would misbehave."""

    name = "recording"

    def __init__(self) -> None:
        self.busy = threading.Lock()
        self.calls = 0

    def detect(self, image):
        if not self.busy.acquire(blocking=False):
            raise AssertionError("one instance used by two threads at once")
        try:
            time.sleep(0.005)
            self.calls += 1
            return FaceDetections.empty()
        finally:
            self.busy.release()


class RecordingQuick(Recording):
    def detect_quick(self, image):
        return self.detect(image)


def test_each_instance_serves_one_thread_at_a_time_and_all_are_used():
    pool = detector_pool(Recording, 2)
    image = np.zeros((8, 8, 3), np.uint8)
    with ThreadPoolExecutor(4) as workers:
        list(workers.map(lambda _: pool.detect(image), range(40)))
    calls = [d.calls for d in pool.detectors]
    assert sum(calls) == 40 and all(calls)
    assert not isinstance(pool, QuickDetector)


def test_a_pool_of_quick_detectors_has_the_quick_pass():
    pool = detector_pool(RecordingQuick, 2)
    assert isinstance(pool, QuickDetector)
    pool.detect_quick(np.zeros((8, 8, 3), np.uint8))
    assert sum(d.calls for d in pool.detectors) == 1


def test_a_pool_used_by_one_thread_at_a_time_builds_one_detector():
    made = []

    def create():
        made.append(Recording())
        return made[-1]

    pool = detector_pool(create, 4)
    for _ in range(10):
        pool.detect(np.zeros((8, 8, 3), np.uint8))
    assert len(made) == 1 and made[0].calls == 10


def test_closing_a_pool_closes_every_detector_it_made():
    closed = []

    class Closable(Recording):
        def close(self):
            closed.append(self)

    pool = detector_pool(Closable, 2)
    with ThreadPoolExecutor(4) as workers:
        list(workers.map(lambda _: pool.detect(np.zeros((8, 8, 3), np.uint8)), range(20)))
    pool.close()
    assert len(closed) == len(pool.detectors) >= 1
