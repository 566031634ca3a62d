"""Abort a blocking FFmpeg call (open, network read) from another thread, at once.

PyAV's `av.open(..., timeout=...)` installs FFmpeg's interrupt callback, which FFmpeg polls
about every 100 ms while it waits on a socket; the callback gives up once
`time.monotonic()` has passed the call's start plus the timeout. PyAV offers no way to ask
it to give up *now*, so stopping a stream would wait for the whole timeout (10 s by default).

`install()` gives PyAV's container module a clock that jumps far ahead for a thread whose
abort event is set, which makes the callback fire on its next poll. Other threads, and every
thread without a registered event, see the real clock. If a future PyAV no longer reads the
clock this way, `install()` returns False and the timeouts still bound every blocking call.
"""

from __future__ import annotations

import threading
import time
from types import ModuleType

_FAR_AHEAD_S = 1.0e9
_registered = threading.local()
_install_lock = threading.Lock()
_installed: bool | None = None


class _AbortAwareClock:
    """Stands in for the `time` module inside av.container.core."""

    def __init__(self, real: ModuleType) -> None:
        self._real = real

    def monotonic(self) -> float:
        now = self._real.monotonic()
        event: threading.Event | None = getattr(_registered, "event", None)
        if event is not None and event.is_set():
            return now + _FAR_AHEAD_S
        deadline: float | None = getattr(_registered, "deadline", None)
        if deadline is not None and now > deadline:
            return now + _FAR_AHEAD_S
        return now

    def __getattr__(self, name: str):
        return getattr(self._real, name)


def install() -> bool:
    """Install the clock once per process; True when blocking calls can be aborted at once."""
    global _installed
    with _install_lock:
        if _installed is None:
            try:
                from av.container import core
            except ImportError:  # pragma: no cover - PyAV is a hard dependency
                core = None
            current = getattr(core, "time", None)
            if isinstance(current, _AbortAwareClock):
                _installed = True
            elif current is time:
                core.time = _AbortAwareClock(time)
                _installed = True
            else:
                _installed = False
        return _installed


def register_current_thread(event: threading.Event | None) -> None:
    """Blocking FFmpeg calls made by this thread give up once `event` is set (None: never)."""
    _registered.event = event


def set_deadline(deadline: float | None) -> None:
    """Blocking FFmpeg calls made by this thread give up once `time.monotonic()` passes
    `deadline` (None: only their own timeouts apply). The watchdog sets it to the last frame's
    time plus `watchdog_s`: FFmpeg's own read timeout restarts with each internal retry, so a
    frozen RTSP server was caught only after about twice the watchdog."""
    _registered.deadline = deadline
