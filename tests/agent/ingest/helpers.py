"""Small helpers shared by the ingest tests."""

from __future__ import annotations

import time
from collections.abc import Callable

from agent.ingest import Frame, StreamReader


def collect(
    reader: StreamReader,
    timeout_s: float,
    until: Callable[[list[Frame]], bool] | None = None,
) -> list[Frame]:
    """Frames from `reader` until it finishes, `until(frames)` holds, or `timeout_s` passes."""
    frames: list[Frame] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not reader.finished:
        frame = reader.get(timeout=0.2)
        if frame is not None:
            frames.append(frame)
            if until is not None and until(frames):
                break
    return frames


def wait_for(condition: Callable[[], bool], timeout_s: float, interval_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval_s)
    return condition()
