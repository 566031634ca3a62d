"""WebRTC sources (kind `whip`): frames a publisher pushes to the agent's WHIP endpoint.

The HTTP service runs the WebRTC side (aiortc, on its event loop) and hands each decoded
`av.VideoFrame` to the stream's `Inbox`; the stream's reader thread takes them out through a
`WebRtcConnection`, exactly as it takes frames from a PyAV container. Until a publisher
arrives the source is `waiting`; when the publisher hangs up the connection ends
(`ended_by_peer`), and the stream waits for the next one or ends (`end_when_sender_leaves`).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator

import av

from agent.config.ingest import IngestConfig, StreamConfig
from agent.ingest.connection import SourceError, register_source

_POLL_S = 0.2
"""How long one wait for a frame or a publisher lasts: bounds how late a stop is seen."""


class _Hangup:
    """Queued after a publisher's last frame."""


class Inbox:
    """Frames from at most one publisher at a time, for one stream. Thread-safe."""

    def __init__(self, stream_id: str, capacity: int = 30) -> None:
        self.stream_id = stream_id
        self._items: deque[av.VideoFrame | _Hangup] = deque()
        self._capacity = capacity
        self._cond = threading.Condition()
        self.session: str | None = None
        """The publishing session (WHIP resource id), None while nobody publishes."""
        self.dropped = 0
        """Frames discarded because the reader fell behind by `capacity` frames."""

    def attach(self, session: str) -> bool:
        """Take the stream for `session`; False when another publisher holds it."""
        with self._cond:
            if self.session is not None:
                return False
            self.session = session
            self._cond.notify_all()
            return True

    def put(self, session: str, frame: av.VideoFrame) -> None:
        with self._cond:
            if session != self.session:
                return  # a late frame of a session that has already left
            if len(self._items) >= self._capacity:
                self._items.popleft()
                self.dropped += 1
            self._items.append(frame)
            self._cond.notify_all()

    def detach(self, session: str) -> None:
        """The publisher left: the reader sees the end after the frames already queued."""
        with self._cond:
            if session != self.session:
                return
            self.session = None
            self._items.append(_Hangup())
            self._cond.notify_all()

    def wait_for_publisher(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(
                lambda: self.session is not None or bool(self._items), timeout
            )

    def get(self, timeout: float) -> av.VideoFrame | _Hangup | None:
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._items), timeout):
                return None
            return self._items.popleft()


class InboxRegistry:
    """The inboxes of this process's WebRTC streams, by stream id."""

    def __init__(self) -> None:
        self._inboxes: dict[str, Inbox] = {}
        self._lock = threading.Lock()

    def get(self, stream_id: str) -> Inbox:
        with self._lock:
            inbox = self._inboxes.get(stream_id)
            if inbox is None:
                inbox = self._inboxes[stream_id] = Inbox(stream_id)
            return inbox

    def discard(self, stream_id: str) -> None:
        with self._lock:
            self._inboxes.pop(stream_id, None)


inboxes = InboxRegistry()
"""Shared by the WHIP endpoint (producer) and the readers (consumers) of one agent process."""


class WebRtcConnection:
    """`Connection` for one publisher's session."""

    fps = None  # WebRTC states no frame rate; frames carry their own timestamps
    hwaccel = None
    software_reason = None

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self.width: int | None = None
        self.height: int | None = None
        self.ended_by_peer = False

    def frames(self, on_corrupt: Callable[[str], None]) -> Iterator[av.VideoFrame | None]:
        while True:
            item = self.inbox.get(_POLL_S)
            if isinstance(item, _Hangup):
                self.ended_by_peer = True
                return
            if item is not None:
                self.width, self.height = item.width, item.height
            yield item

    def close(self) -> None:
        pass  # the WHIP endpoint owns the peer connection


def _open_whip(stream: StreamConfig, ingest: IngestConfig) -> WebRtcConnection:
    inbox = inboxes.get(stream.id or "stream")
    if not inbox.wait_for_publisher(_POLL_S):
        raise SourceError(
            f"waiting for a WebRTC publisher (WHIP: POST /whip/{stream.id})", waiting=True
        )
    return WebRtcConnection(inbox)


register_source("whip", _open_whip)
