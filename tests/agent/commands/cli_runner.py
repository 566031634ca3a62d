"""Run the real `verity` command line in a subprocess, from any folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# What MediaPipe, TensorFlow Lite and absl write to stderr when a face detector starts.
NATIVE_NOISE = ("XNNPACK", "absl::InitializeLog", "inference_feedback_manager", "W0000", "I0000")


def verity(*args: str, cwd: str | Path | None = None, env: dict[str, str] | None = None,
           path_first: str | Path | None = None, timeout: float = 120,
           ) -> subprocess.CompletedProcess:
    """`verity ARGS` with this checkout's code; `env` adds to (None values remove from) the
    environment; `path_first` goes in front of the import path (e.g. a sitecustomize)."""
    environ = {k: v for k, v in os.environ.items() if not k.upper().startswith("VERITY_")}
    environ.update({k: v for k, v in (env or {}).items() if v is not None})
    environ["PYTHONPATH"] = os.pathsep.join(str(p) for p in (path_first, ROOT) if p)
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=environ, cwd=cwd, check=False,
    )


def blocked_imports(folder: Path, *modules: str) -> Path:
    """A folder with a sitecustomize that makes `import <module>` fail (as if not installed)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["import sys"] + [f"sys.modules[{m!r}] = None" for m in modules]
    (folder / "sitecustomize.py").write_text("\n".join(lines) + "\n")
    return folder
