"""The TensorRT engine cache: keys, paths, atomic writes, build locks, load-or-rebuild.

A serialized TensorRT engine only runs on the TensorRT version and the GPU model it was built
for; loading it anywhere else fails with errors such as "version tag does not match" (the most
common TensorRT complaint in other stream projects' issue trackers). So a cached engine is
reused only when all of these match, and they are all part of its file name:

- the ONNX bytes (sha256 of the pack's ONNX file),
- the TensorRT version,
- the GPU model name and its compute capability,
- the batch profile (max batch) and the precision.

A cached file that still fails to deserialize (truncated, or a TensorRT patch release that
changed the format) is rebuilt with a logged warning, never a crash.

Concurrency: engines are written to a temporary file in the same folder and renamed into
place (`os.replace`, atomic on POSIX), so a reader never sees half an engine; building takes a
`flock` on `<engine>.lock`, so two processes starting together build once (the second waits,
then loads what the first wrote). `flock` locks vanish with the process that held them: a
crashed build leaves no stale lock. (On NFS, flock may be emulated or local-only: give each
node its own cache folder.)

Where this ran: everything in this module is plain Python and is tested on the CPU machine
(tests/engines/runtime/test_engine_cache.py); TensorRT plugs in through the `deserialize`
and `build` callables of `load_or_build`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal, TypeVar

from engines.registry import ModelPack, file_sha256

log = logging.getLogger(__name__)

Precision = Literal["fp16", "fp32"]
PRECISIONS: tuple[str, ...] = ("fp16", "fp32")

# Bump when the meaning of a cached file changes (e.g. a different profile policy), so old
# files are ignored instead of misread.
CACHE_FORMAT = 1

T = TypeVar("T")
LoadOutcome = Literal["cached", "built", "rebuilt"]


class EngineBuildError(RuntimeError):
    """TensorRT could not parse or build a model (the message says which and why)."""


def normalize_compute_capability(compute_capability: str | tuple[int, int]) -> str:
    """(8, 7) or "8.7" -> "8.7"."""
    if isinstance(compute_capability, tuple):
        major, minor = compute_capability
        return f"{int(major)}.{int(minor)}"
    text = str(compute_capability).strip()
    if not re.fullmatch(r"\d+\.\d+", text):
        raise ValueError(f"compute capability must look like '8.7', got {compute_capability!r}")
    return text


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")


def engine_cache_key(
    onnx_sha256: str,
    trt_version: str,
    device_name: str,
    compute_capability: str | tuple[int, int],
    max_batch: int,
    precision: str,
) -> str:
    """A hex digest that changes when any input changes and is stable otherwise."""
    _check_precision(precision)
    if int(max_batch) < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    if not onnx_sha256 or not trt_version or not device_name:
        raise ValueError("onnx_sha256, trt_version and device_name must be non-empty")
    fields = {
        "format": CACHE_FORMAT,
        "onnx_sha256": onnx_sha256.lower(),
        "tensorrt": trt_version.strip(),
        # Whitespace differs between driver versions' reports of the same board.
        "device": " ".join(device_name.split()),
        "compute_capability": normalize_compute_capability(compute_capability),
        "max_batch": int(max_batch),
        "precision": precision,
    }
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


def engine_cache_path(
    cache_dir: str | Path,
    pack: ModelPack,
    *,
    trt_version: str,
    device_name: str,
    compute_capability: str | tuple[int, int],
    max_batch: int,
    precision: str,
    onnx_sha256: str | None = None,
) -> Path:
    """Where the engine for `pack` on this TensorRT/GPU/profile/precision lives.

    The name is readable (model, version, precision, batch, sm) and ends in the key, so
    `ls` on the cache tells what is there. onnx_sha256 defaults to hashing the pack's ONNX
    file (the card's checksum may be absent; the bytes are what matter).
    """
    digest = onnx_sha256 or file_sha256(pack.onnx_path)
    key = engine_cache_key(
        digest, trt_version, device_name, compute_capability, max_batch, precision
    )
    sm = normalize_compute_capability(compute_capability).replace(".", "")
    name = (
        f"{_safe(pack.card.name)}-{_safe(pack.card.version)}"
        f"_{precision}_b{int(max_batch)}_sm{sm}_{key[:16]}.engine"
    )
    return Path(cache_dir).expanduser() / name


def atomic_write_bytes(path: Path, data: bytes | memoryview) -> None:
    """Write via a temporary file in the same folder, fsync, then rename into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable (a power cut must not lose a 30-minute Jetson build).
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_metadata(engine_path: Path, info: dict) -> Path:
    """A human-readable sidecar (`<engine>.json`): what the engine was built from and for."""
    meta = Path(str(engine_path) + ".json")
    atomic_write_bytes(meta, (json.dumps(info, indent=2, sort_keys=True) + "\n").encode())
    return meta


@contextlib.contextmanager
def build_lock(
    engine_path: Path,
    *,
    timeout_s: float | None = None,
    poll_s: float = 0.5,
    log_every_s: float = 60.0,
) -> Iterator[Path]:
    """Hold an exclusive flock on `<engine>.lock` while building `engine_path`.

    Waits for another process's build (logging now and then: a Jetson build takes half an
    hour); raises TimeoutError after timeout_s if given.
    """
    lock_path = Path(str(engine_path) + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        started = time.monotonic()
        last_log = None
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
            waited = time.monotonic() - started
            if timeout_s is not None and waited >= timeout_s:
                raise TimeoutError(
                    f"another process has held {lock_path} for {waited:.0f} s "
                    "(still building this engine?)"
                )
            if last_log is None or time.monotonic() - last_log >= log_every_s:
                log.info(
                    "waiting for another process to finish building %s (lock %s, %.0f s so far)",
                    engine_path.name,
                    lock_path,
                    waited,
                )
                last_log = time.monotonic()
            time.sleep(poll_s)
        # Who holds it, for a person looking at a stuck build.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        yield lock_path
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def try_load(path: Path, deserialize: Callable[[bytes], T | None]) -> tuple[T | None, str | None]:
    """(object, None) when the cached file loads; (None, None) when there is no file;
    (None, reason) when the file exists but cannot be used."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"cannot read it ({exc.strerror or exc})"
    if not data:
        return None, "the file is empty"
    try:
        obj = deserialize(data)
    except Exception as exc:  # a deserializer may raise instead of returning None
        return None, f"{exc.__class__.__name__}: {exc}"
    if obj is None:
        return None, "it does not deserialize"
    return obj, None


def load_or_build(
    path: Path,
    *,
    deserialize: Callable[[bytes], T | None],
    build: Callable[[], bytes],
    force: bool = False,
    lock_timeout_s: float | None = None,
    on_built: Callable[[Path, float], None] | None = None,
) -> tuple[T, LoadOutcome]:
    """Load the cached engine at `path`, or build it (once across processes) and save it.

    - cached file loads: ("cached"), no lock taken;
    - no file: build under the lock ("built");
    - file present but unusable (corrupt, other TensorRT version, ...): warn, rebuild
      ("rebuilt"). The bad file is replaced atomically, never deleted first.
    - force: rebuild even when a good file exists ("rebuilt" if one existed).
    """
    path = Path(path)
    bad_reason: str | None = None
    if not force:
        obj, bad_reason = try_load(path, deserialize)
        if obj is not None:
            return obj, "cached"
    with build_lock(path, timeout_s=lock_timeout_s):
        existed = path.exists()
        if not force:
            # Another process may have built it while we waited for the lock.
            obj, reason = try_load(path, deserialize)
            if obj is not None:
                return obj, "cached"
            bad_reason = reason
        if bad_reason:
            log.warning(
                "cached TensorRT engine %s is unusable (%s); rebuilding it", path, bad_reason
            )
        started = time.monotonic()
        data = build()
        elapsed = time.monotonic() - started
        atomic_write_bytes(path, data)
        if on_built is not None:
            on_built(path, elapsed)
        obj, reason = try_load(path, deserialize)
        if obj is None:
            raise EngineBuildError(
                f"the engine just built at {path} does not load back ({reason or 'missing'})"
            )
        return obj, ("rebuilt" if existed or bad_reason else "built")
