"""A WHEP server on 127.0.0.1, as an SFU would expose one: aiortc serving a clip per participant.

`whep_server()` -> a started WhepServer. `server.publish(name, clip)` makes a participant
available at `server.url(name)`; before that, the server answers 404 (the participant has not
joined). `server.sessions` lists the live sessions (DELETE removes them).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer


class WhepServer:
    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.clips: dict[str, Path] = {}
        self.sessions: dict[str, RTCPeerConnection] = {}
        self.requests: list[tuple[str, str]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    def url(self, name: str) -> str:
        return f"whep+http://127.0.0.1:{self.port}/whep/{name}"

    def publish(self, name: str, clip: Path) -> None:
        self.clips[name] = clip

    def start(self) -> WhepServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/whep/{name}", self._offer)
        app.router.add_delete("/whep/{name}/{session}", self._delete)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def _authorized(self, request: web.Request) -> bool:
        return self.token is None or request.headers.get("Authorization") == f"Bearer {self.token}"

    async def _offer(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.requests.append(("POST", name))
        if not self._authorized(request):
            return web.Response(status=401)
        if name not in self.clips:
            return web.Response(status=404, text="no such participant")
        peer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        player = MediaPlayer(str(self.clips[name]))
        await peer.setRemoteDescription(RTCSessionDescription(sdp=await request.text(), type="offer"))
        peer.addTrack(player.video)
        await peer.setLocalDescription(await peer.createAnswer())
        session = uuid.uuid4().hex
        self.sessions[session] = peer
        return web.Response(status=201, text=peer.localDescription.sdp,
                            content_type="application/sdp",
                            headers={"Location": f"/whep/{name}/{session}"})

    async def _delete(self, request: web.Request) -> web.Response:
        self.requests.append(("DELETE", request.match_info["name"]))
        peer = self.sessions.pop(request.match_info["session"], None)
        if peer is None:
            return web.Response(status=404)
        await peer.close()
        return web.Response(status=200)

    def stop(self) -> None:
        async def shutdown() -> None:
            for peer in list(self.sessions.values()):
                await peer.close()
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture
def whep_server() -> Iterator:
    servers: list[WhepServer] = []

    def start(token: str | None = None) -> WhepServer:
        server = WhepServer(token).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
