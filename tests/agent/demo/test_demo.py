"""`verity demo` (what `make demo` runs on a fresh machine): the manipulated part of its clip
alerts, the real part does not, through an embedded Redis."""

from __future__ import annotations

import subprocess
import sys


def test_the_demo_passes_with_the_default_models():
    done = subprocess.run([sys.executable, "-m", "agent.cli", "demo"], capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    assert "PASS: alert" in done.stdout
    assert '"event":"new"' in done.stdout  # the alert as read back from the Redis Stream
