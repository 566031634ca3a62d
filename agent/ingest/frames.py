"""`Frame`: one decoded picture and where it sits in its stream's time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class Frame:
    """One decoded picture, converted to BGR, with its place in the stream's time."""

    stream_id: str
    index: int
    """Position among all frames decoded from this stream (across reconnections)."""
    time: float
    """Stream time in seconds: starts at 0 at the first frame and stays monotonic across
    reconnections (a reconnection adds the wall-clock gap)."""
    pts: float | None
    """The container's own presentation time in seconds (None when the source gives none)."""
    wall_time: float
    """time.time() when the frame was decoded."""
    segment: int
    """Connection number (0, 1, ...): a new value marks a discontinuity (a reconnection, or a
    looping file starting over), so trackers should not link faces across it."""
    image: np.ndarray
    """H x W x 3 uint8, BGR."""
