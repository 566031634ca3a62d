"""The alert spool: alerts Redis has not taken yet, on disk, so a crash loses none.

One JSON alert document per line (readable with `jq`), appended and fsync'd per batch; the
snapshot JPEGs a `new` alert names are kept beside it in `<spool>.snapshots/`. The sink
replays the spool, in order, when Redis answers (and at the next start), then empties it.
Files are created 0600: alerts name streams and faces.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from agent.alerts.schema import Alert

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class AlertJournal:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.snapshots = self.path.with_name(self.path.name + ".snapshots")
        self._lock = threading.Lock()

    def append(self, items: list[tuple[Alert, dict[str, bytes]]]) -> None:
        """Write `items` durably (raises OSError when the disk refuses)."""
        if not items:
            return
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for _alert, blobs in items:
                for key, blob in blobs.items():
                    self._write_private(self.snapshots / _UNSAFE.sub("_", key), blob)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, "".join(a.to_json() + "\n" for a, _ in items).encode())
                os.fsync(fd)
            finally:
                os.close(fd)

    def pending(self, offset: int = 0) -> list[tuple[int, Alert, dict[str, bytes]]]:
        """Spooled alerts from byte `offset` on: (offset after the line, alert, its blobs).
        A torn last line (a crash mid-write) is skipped."""
        with self._lock:
            try:
                with open(self.path, "rb") as handle:
                    handle.seek(offset)
                    data = handle.read()
            except FileNotFoundError:
                return []
        records, position = [], offset
        for line in data.splitlines(keepends=True):
            position += len(line)
            if not line.endswith(b"\n"):
                break
            try:
                alert = Alert.from_json(line)
            except ValueError:
                continue
            records.append((position, alert, self._blobs(alert)))
        return records

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def clear_if_size(self, expected: int) -> bool:
        """Empty the spool if nothing was appended since it was `expected` bytes long."""
        with self._lock:
            if self.size() != expected:
                return False
            self.path.unlink(missing_ok=True)
            if self.snapshots.is_dir():
                for blob in self.snapshots.iterdir():
                    blob.unlink(missing_ok=True)
            return True

    def _blobs(self, alert: Alert) -> dict[str, bytes]:
        blobs = {}
        if alert.snapshot is not None:
            for key in (alert.snapshot.frame_key, alert.snapshot.explanation_key):
                if key:
                    try:
                        blobs[key] = (self.snapshots / _UNSAFE.sub("_", key)).read_bytes()
                    except OSError:
                        pass
        return blobs

    @staticmethod
    def _write_private(path: Path, data: bytes) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
