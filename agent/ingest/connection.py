"""The one interface every source kind implements: open a connection, iterate its frames.

`StreamReader` knows nothing about protocols: it asks `open_connection` for a `Connection`
and pulls decoded `av.VideoFrame`s from it. A source kind is one module that registers an
opener here (PyAV containers for files, RTSP, RTP/SDP and devices; aiortc for WebRTC), so a
new protocol does not touch the reader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

import av

if TYPE_CHECKING:
    from agent.config.ingest import IngestConfig, StreamConfig


class SourceError(Exception):
    """A source that cannot be opened or read; `str()` is the cause in plain words."""

    def __init__(self, cause: str, *, permanent: bool = False, waiting: bool = False) -> None:
        super().__init__(cause)
        self.cause = cause
        self.permanent = permanent
        """True when retrying cannot help (e.g. a missing local file)."""
        self.waiting = waiting
        """True when nobody is sending yet (a participant who has not joined): not a failure,
        the reader keeps waiting and reports the stream as `waiting`."""


class ConnectionLost(Exception):
    """A live connection ended (server closed it, watchdog, read error): reconnect."""

    def __init__(self, cause: str, *, silent: bool = False) -> None:
        super().__init__(cause)
        self.silent = silent
        """True when not one packet arrived on this connection: for a source that listens
        (RTP described by an SDP), nobody has started sending."""


class Connection(Protocol):
    """An open source. Created by an opener, used by one reader thread, then closed."""

    fps: float | None
    """The source's nominal frame rate, when it states one."""
    width: int | None
    height: int | None
    hwaccel: str | None
    """The hardware device decoding this stream, None for software."""
    software_reason: str | None
    """Why hardware decoding was asked for but is not used (None if not asked for)."""
    ended_by_peer: bool
    """True once the sender hung up on purpose (a WebRTC publisher leaving), as opposed to a
    connection that broke."""

    def frames(self, on_corrupt: Callable[[str], None]) -> Iterator[av.VideoFrame | None]:
        """Decoded frames until the source ends. Yields None when data arrived (or a short
        wait passed) without a picture, so the caller can run its watchdog and see a stop.
        Raises ConnectionLost when a live connection breaks; `on_corrupt(cause)` is called for
        each packet that does not decode (it is skipped)."""
        ...

    def close(self) -> None: ...


Opener = Callable[["StreamConfig", "IngestConfig"], Connection]
_OPENERS: dict[str, Opener] = {}
_builtins_loaded = False


def register_source(kind: str, opener: Opener) -> None:
    """Make `kind` (a `StreamConfig.kind`) open through `opener`."""
    _OPENERS[kind] = opener


def open_connection(stream: StreamConfig, ingest: IngestConfig) -> Connection:
    """Open `stream` with the opener registered for its kind; raise SourceError naming why not."""
    _load_builtin_kinds()
    try:
        opener = _OPENERS[stream.kind]
    except KeyError:
        raise SourceError(f"no source module handles kind {stream.kind!r}", permanent=True) from None
    return opener(stream, ingest)


def _load_builtin_kinds() -> None:
    # Imported here, not at the top: each module registers itself and imports this one.
    global _builtins_loaded
    if not _builtins_loaded:
        from agent.ingest import source, webrtc, whep  # noqa: F401

        _builtins_loaded = True
