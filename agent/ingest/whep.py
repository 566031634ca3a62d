"""WHEP sources (kind `whep`): pull one participant's video from an SFU over WebRTC.

`url: whep+https://sfu.example/whep/room-1/alice` (or `whep+http://`): the agent POSTs a
receive-only SDP offer to the URL (without `whep+`), with `Authorization: Bearer <token>` when
the stream has a `bearer_token`, takes the `201` answer, and reads the decoded frames; closing
the connection DELETEs the session resource the server named in `Location`. Before the SFU has
the participant (a 404 or 409 answer), the stream is `waiting`; a broken call reconnects
like any live source. The WebRTC work runs on one event-loop thread shared by all WHEP
streams of the process.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from urllib.parse import urljoin

import aiohttp
import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from agent.config.ingest import IngestConfig, StreamConfig
from agent.ingest.connection import ConnectionLost, SourceError, register_source
from agent.ingest.webrtc import Inbox, _Hangup
from agent.redaction import redact_url

log = logging.getLogger("agent.ingest")

_POLL_S = 0.2
_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _shared_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="verity-whep", daemon=True).start()
        return _loop


def endpoint(url: str) -> str:
    """whep+https://host/x -> https://host/x"""
    return url.split("+", 1)[1] if url.lower().startswith("whep+") else url


class WhepConnection:
    fps = None
    hwaccel = None
    software_reason = None
    ended_by_peer = False

    def __init__(self, stream: StreamConfig, ingest: IngestConfig) -> None:
        self.stream = stream
        self.url = endpoint(stream.url)
        self.timeout = ingest.open_timeout_s
        self.inbox = Inbox(stream.id or "stream")
        self.session = "whep"
        self.width: int | None = None
        self.height: int | None = None
        self.peer: RTCPeerConnection | None = None
        self.resource: str | None = None
        self._loop = _shared_loop()
        self._tasks: list[asyncio.Task] = []

    def open(self) -> WhepConnection:
        future = asyncio.run_coroutine_threadsafe(self._connect(), self._loop)
        try:
            future.result(self.timeout + 1)
        except SourceError:
            self.close()
            raise
        except Exception as exc:  # noqa: BLE001 - network and SDP failures, said plainly
            self.close()
            cause = str(exc) or type(exc).__name__
            raise SourceError(f"WHEP request failed: {cause}") from None
        return self

    async def _connect(self) -> None:
        self.inbox.attach(self.session)
        self.peer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.peer.addTransceiver("video", direction="recvonly")

        @self.peer.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                self._tasks.append(asyncio.ensure_future(self._pump(track)))

        @self.peer.on("connectionstatechange")
        async def on_state() -> None:
            if self.peer is not None and self.peer.connectionState in ("failed", "closed"):
                self.inbox.detach(self.session)

        await self.peer.setLocalDescription(await self.peer.createOffer())
        headers = {"Content-Type": "application/sdp"}
        token = self.stream.bearer_token
        if token is not None:
            headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(self.url, data=self.peer.localDescription.sdp,
                                    headers=headers) as reply:
                body = await reply.text()
                if reply.status in (404, 409, 503):  # the SFU has no such participant (yet)
                    raise SourceError(
                        f"waiting for the participant (WHEP answered {reply.status})", waiting=True
                    )
                if reply.status in (401, 403):
                    raise SourceError(f"WHEP refused: {reply.status} (check bearer_token)",
                                      permanent=False)
                if reply.status != 201:
                    raise SourceError(f"WHEP answered {reply.status} {reply.reason}")
                location = reply.headers.get("Location")
                self.resource = urljoin(self.url, location) if location else None
        await self.peer.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))

    async def _pump(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                self.inbox.put(self.session, await track.recv())
        except MediaStreamError:
            pass
        finally:
            self.inbox.detach(self.session)

    def frames(self, on_corrupt: Callable[[str], None]) -> Iterator[av.VideoFrame | None]:
        while True:
            item = self.inbox.get(_POLL_S)
            if isinstance(item, _Hangup):
                raise ConnectionLost("the WHEP call ended (the SFU closed it)")
            if item is not None:
                self.width, self.height = item.width, item.height
            yield item

    def close(self) -> None:
        if self._loop.is_closed():
            return
        future = asyncio.run_coroutine_threadsafe(self._hang_up(), self._loop)
        try:
            future.result(5)
        except Exception as exc:  # noqa: BLE001 - leaving anyway
            log.debug("stream %s: WHEP hang-up: %s", self.stream.id, exc)

    async def _hang_up(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.resource is not None:
            resource, self.resource = self.resource, None
            headers = {}
            if self.stream.bearer_token is not None:
                headers["Authorization"] = f"Bearer {self.stream.bearer_token.get_secret_value()}"
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as s:
                    async with s.delete(resource, headers=headers):
                        pass
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                log.info("stream %s: could not DELETE the WHEP session at %s: %s",
                         self.stream.id, redact_url(resource), exc)
        if self.peer is not None:
            await self.peer.close()
            self.peer = None


def _open_whep(stream: StreamConfig, ingest: IngestConfig) -> WhepConnection:
    return WhepConnection(stream, ingest).open()


register_source("whep", _open_whep)
