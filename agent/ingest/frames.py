"""`Frame`: one decoded picture and where it sits in its stream's time."""

from __future__ import annotations

import threading
import time as _time

import av
import numpy as np


class Frame:
    """One decoded picture with its place in the stream's time.

    The picture stays in the decoder's format until the analysis asks for `image`: a live
    stream that falls behind drops frames from its queue, and a dropped frame is never
    converted (and a queued one holds half the memory of its BGR copy).
    """

    __slots__ = (
        "_decoded",
        "_image",
        "_lock",
        "convert_seconds",
        "index",
        "pts",
        "segment",
        "stream_id",
        "time",
        "wall_time",
    )

    def __init__(
        self, stream_id: str, index: int, time: float, pts: float | None, wall_time: float,
        segment: int, image: np.ndarray | None = None, *, decoded: av.VideoFrame | None = None,
    ) -> None:
        if (image is None) == (decoded is None):
            raise ValueError("a Frame needs exactly one of image (BGR) or decoded (av.VideoFrame)")
        self.stream_id = stream_id
        self.index = index
        """Position among all frames decoded from this stream (across reconnections)."""
        self.time = time
        """Stream time in seconds: starts at 0 at the first frame and stays monotonic across
        reconnections (a reconnection adds the wall-clock gap)."""
        self.pts = pts
        """The container's own presentation time in seconds (None when the source gives none)."""
        self.wall_time = wall_time
        """time.time() when the frame was decoded."""
        self.segment = segment
        """Connection number (0, 1, ...): a new value marks a discontinuity (a reconnection, or
        a looping file starting over), so trackers should not link faces across it."""
        self._decoded = decoded
        self._image = image
        self._lock = threading.Lock()
        self.convert_seconds = 0.0
        """CPU time this frame's conversion to BGR took (0 until `image` is first read)."""

    @property
    def image(self) -> np.ndarray:
        """H x W x 3 uint8, BGR; converted from the decoded picture on first use (FFmpeg's
        conversion, as training's crops are made)."""
        if self._image is None:
            with self._lock:  # two readers on two threads convert once
                if self._image is None:
                    started = _time.thread_time()
                    self._image = self._decoded.to_ndarray(format="bgr24")  # type: ignore[union-attr]
                    self.convert_seconds = _time.thread_time() - started
                    self._decoded = None  # the BGR copy replaces it
        return self._image

    @image.setter
    def image(self, value: np.ndarray) -> None:
        self._image, self._decoded = value, None

    @property
    def width(self) -> int:
        return self._decoded.width if self._decoded is not None else self._image.shape[1]  # type: ignore[union-attr]

    @property
    def height(self) -> int:
        return self._decoded.height if self._decoded is not None else self._image.shape[0]  # type: ignore[union-attr]

    def __repr__(self) -> str:
        return (f"Frame({self.stream_id!r}, index={self.index}, time={self.time:.3f}, "
                f"{self.width}x{self.height}, segment={self.segment})")
