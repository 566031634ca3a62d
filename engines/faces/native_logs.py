"""Keep MediaPipe's native log lines (TFLite, absl, glog) off stderr while a graph starts.

MediaPipe's C++ side writes straight to file descriptor 2 when a graph starts, e.g.

    INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    W0000 00:00:1796429487.948207   13632 inference_feedback_manager.cc:114] Feedback manager ...

Some of it from the graph's own threads, after the constructor has returned, and absl's log has
no environment switch. So the graph is built and run once on a blank picture (every calculator
has then opened) with fd 2 pointed at a temporary file; afterwards the known noise is dropped
and anything else is written to the real stderr. `show_native_logs(True)` (`verity -v`) turns
this off.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator

NOISE = re.compile(
    rb"^(INFO: Created TensorFlow Lite"
    rb"|INFO: Initialized TensorFlow Lite"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|[IW]\d{4} [\d:.]+\s+\d+ \S+:\d+\])"
)

_show = False
_lock = threading.Lock()


def show_native_logs(show: bool = True) -> None:
    """Let native log lines through (verbose mode)."""
    global _show
    _show = show


def quiet_environment() -> None:
    """The switches glog and TensorFlow do read (before the library loads)."""
    if not _show:
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def native_stderr_filtered() -> Iterator[None]:
    """Run the block with fd 2 captured; then pass on every line that is not known noise."""
    if _show:
        yield
        return
    with _lock:
        _flush()
        saved = os.dup(2)
        try:
            with tempfile.TemporaryFile() as capture:
                os.dup2(capture.fileno(), 2)
                try:
                    yield
                finally:
                    _flush()
                    os.dup2(saved, 2)
                    capture.seek(0)
                    kept = [line for line in capture.read().splitlines(keepends=True)
                            if not NOISE.match(line)]
                    data = b"".join(kept)
                    while data:
                        data = data[os.write(2, data):]
        finally:
            os.close(saved)


def _flush() -> None:
    for stream in (sys.stderr, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()
