"""A WebRTC participant pushing a file to a WHIP endpoint (aiortc), as an SFU or OBS would."""

from __future__ import annotations

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

class Publisher:
    """One participant pushing a file over WebRTC to the agent's WHIP endpoint."""

    def __init__(self, base: str, stream_id: str, path, codec: str | None = None,
                 query: str = "", token: str | None = None) -> None:
        self.url = f"{base}/whip/{stream_id}{query}"
        self.base, self.path, self.codec, self.token = base, str(path), codec, token
        self.peer: RTCPeerConnection | None = None
        self.location: str | None = None

    def _headers(self, **more: str) -> dict[str, str]:
        return {**({"Authorization": f"Bearer {self.token}"} if self.token else {}), **more}

    async def start(self) -> tuple[int, str]:
        self.peer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.player = MediaPlayer(self.path)
        transceiver = self.peer.addTransceiver(self.player.video, direction="sendonly")
        if self.codec:
            codecs = RTCRtpSender.getCapabilities("video").codecs
            transceiver.setCodecPreferences([c for c in codecs if c.mimeType == f"video/{self.codec}"])
        await self.peer.setLocalDescription(await self.peer.createOffer())
        async with aiohttp.ClientSession() as session:
            async with session.post(self.url, data=self.peer.localDescription.sdp,
                                    headers=self._headers(**{"Content-Type": "application/sdp"})) as reply:
                body = await reply.text()
                if reply.status != 201:
                    await self.peer.close()
                    return reply.status, body
                assert reply.content_type == "application/sdp"
                self.location = reply.headers["Location"]
        await self.peer.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
        return 201, body

    async def hang_up(self) -> int:
        async with aiohttp.ClientSession() as session:
            async with session.delete(self.base + self.location, headers=self._headers()) as reply:
                status = reply.status
        await self.peer.close()
        return status
