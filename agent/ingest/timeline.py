"""Stream time: one monotonic clock per stream, the frame-rate cap, and real-time pacing.

All three work on stream time (the container's timestamps), not on when a frame happened to
be decoded, so a file decoded faster than real time is capped by its own timestamps.
"""

from __future__ import annotations

from typing import Literal

DEFAULT_FRAME_DURATION_S = 1.0 / 30.0


class StreamClock:
    """Maps container timestamps (which restart at every reconnection or loop, and may be
    missing) onto one stream time that starts at 0 and never goes backwards.

    Within a segment, time follows the container's pts. A new segment continues from the
    last time plus the wall-clock gap (reconnection) or plus one frame (file loop).
    """

    def __init__(self, nominal_fps: float | None = None) -> None:
        self._offset: float | None = None  # stream time = pts + offset, within a segment
        self._last_time: float | None = None
        self._last_wall: float | None = None
        self._restart: Literal["reconnect", "loop"] | None = None
        self._observed_duration: float | None = None
        self.nominal_fps = nominal_fps

    @property
    def frame_duration(self) -> float:
        """Nominal frame duration: from the stream's frame rate, else as observed."""
        if self.nominal_fps and self.nominal_fps > 0:
            return 1.0 / self.nominal_fps
        return self._observed_duration or DEFAULT_FRAME_DURATION_S

    def new_segment(self, reason: Literal["reconnect", "loop"]) -> None:
        """The next frame starts a new timeline (a reconnection, or a file starting over)."""
        self._offset = None
        self._restart = reason

    def place(self, pts: float | None, wall: float) -> float:
        """Stream time of a frame with container time `pts`, decoded at monotonic `wall`."""
        last = self._last_time
        anchor = True  # set the offset from this frame
        if last is None:
            time = 0.0
        elif self._restart == "reconnect":
            time = last + max(wall - (self._last_wall or wall), self.frame_duration)
        elif self._restart == "loop" or pts is None or self._offset is None:
            time = last + self.frame_duration
        else:
            time = pts + self._offset
            anchor = time <= last
            if anchor:  # timestamps went backwards (a source bug or a wrap): re-anchor
                time = last + self.frame_duration
            else:
                self._observed_duration = time - last
        if pts is not None and anchor:
            self._offset = time - pts
        self._restart = None
        self._last_time = time
        self._last_wall = wall
        return time


class FrameRateCap:
    """Admits at most `fps` frames per second of stream time, on a fixed grid.

    The grid (0, 1/fps, 2/fps, ...) advances by exact steps, so there is no drift; a frame
    within half a source frame of a grid point counts as on time, so timestamp jitter does
    not alias (a 30 fps source capped at 10 fps yields exactly every 3rd frame).
    """

    def __init__(self, fps: float) -> None:
        self.interval = 1.0 / fps
        self._next_due: float | None = None

    def admit(self, time: float, frame_duration: float) -> bool:
        tolerance = 0.5 * min(frame_duration, self.interval)
        if self._next_due is not None and time < self._next_due - tolerance:
            return False
        if self._next_due is None or time - self._next_due > self.interval:
            self._next_due = time  # first frame, or after a gap: restart the grid here
        self._next_due += self.interval
        return True


class RealtimePacer:
    """Tells a file reader how long to wait so frames come out at their own timestamps.

    When decoding falls more than `max_lag_s` behind (a slow machine), the schedule restarts
    from the current frame instead of bursting to catch up.
    """

    def __init__(self, max_lag_s: float = 1.0) -> None:
        self.max_lag_s = max_lag_s
        self._origin: float | None = None  # wall time at which stream time 0 is due

    def delay(self, time: float, wall: float) -> float:
        if self._origin is None or wall - (self._origin + time) > self.max_lag_s:
            self._origin = wall - time
        return max(0.0, self._origin + time - wall)
