"""This process's resources as the kernel counts them (Linux /proc), for bench and soak."""

from __future__ import annotations

import os


def _status(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_mb() -> float:
    kb = _status("VmRSS")
    return kb / 1024 if kb is not None else float("nan")


def threads() -> int:
    return _status("Threads") or -1


def open_files() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1
