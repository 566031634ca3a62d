"""WHIP ingest (RFC 9725): a publisher pushes one participant's video over WebRTC.

    POST   /whip/{stream_id}            body: SDP offer (application/sdp) -> 201, SDP answer,
                                        Location: /whip/{stream_id}/{session}
    DELETE /whip/{stream_id}/{session}  the publisher hangs up

A POST to a stream id the agent does not watch creates that stream (labels from the query:
`?room=...&participant=...`); it ends when the publisher hangs up. A configured `whip:`
stream waits for its publisher and, after a hang-up, for the next. One publisher per stream
at a time (409 otherwise). aiortc decodes VP8 and H.264; frames go to the stream's inbox
(agent.ingest.webrtc), where its reader takes them like any other source's.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from dataclasses import dataclass, field

from aiohttp import web
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from agent.config.ingest import StreamConfig
from agent.ingest.webrtc import Inbox, inboxes
from agent.service import keys
from agent.service.auth import problem

log = logging.getLogger("agent.service.whip")

routes = web.RouteTableDef()
_STREAM_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_MAX_OFFER_BYTES = 64 * 1024


@dataclass
class WhipSession:
    id: str
    stream_id: str
    peer: RTCPeerConnection
    inbox: Inbox
    tasks: set[asyncio.Task] = field(default_factory=set)


def sessions(app: web.Application) -> dict[str, WhipSession]:
    return app[keys.WHIP_SESSIONS]


@routes.post("/whip/{stream_id}")
async def publish(request: web.Request) -> web.Response:
    stream_id = request.match_info["stream_id"]
    if not _STREAM_ID.match(stream_id):
        return problem(400, "a stream id is 1-64 of A-Z a-z 0-9 _ . : -")
    if request.content_type != "application/sdp":
        return problem(415, "WHIP takes an SDP offer with Content-Type: application/sdp")
    if (request.content_length or 0) > _MAX_OFFER_BYTES:
        return problem(413, "the SDP offer is too large")
    offer = await request.text()
    if "m=video" not in offer:
        return problem(400, "the offer has no video (m=video): Verity watches pictures")
    pipeline = request.app[keys.AGENT].pipeline
    if pipeline is None:
        return problem(503, "the agent is starting")

    slot = pipeline.slot(stream_id)
    if slot is None:
        labels = {k: request.query[k] for k in ("room", "participant") if k in request.query}
        stream = StreamConfig(
            url=f"whip:{stream_id}", id=stream_id, kind="whip", end_when_sender_leaves=True,
            **labels,
        )
        try:
            pipeline.add_stream(stream, start=True)
        except ValueError as exc:  # created by a concurrent request meanwhile
            return problem(409, str(exc))
    elif slot.config.kind != "whip":
        return problem(409, f"stream {stream_id!r} is a {slot.config.kind} source, not WHIP")

    inbox = inboxes.get(stream_id)
    session = WhipSession(uuid.uuid4().hex, stream_id, _peer(request.app), inbox)
    if not inbox.attach(session.id):
        await session.peer.close()
        return problem(409, f"a publisher is already sending to stream {stream_id!r}")
    try:
        answer = await _answer(session, offer, request.app)
    except Exception as exc:  # noqa: BLE001 - a bad offer is the client's problem, said plainly
        inbox.detach(session.id)
        await session.peer.close()
        return problem(400, f"cannot answer this SDP offer: {exc}")
    sessions(request.app)[session.id] = session
    log.info("stream %s: WHIP publisher connected (session %s)", stream_id, session.id[:8])
    return web.Response(
        status=201,
        text=answer,
        content_type="application/sdp",
        headers={"Location": f"/whip/{stream_id}/{session.id}", "ETag": f'"{session.id}"'},
    )


@routes.delete("/whip/{stream_id}/{session_id}")
async def hang_up(request: web.Request) -> web.Response:
    session = sessions(request.app).get(request.match_info["session_id"])
    if session is None or session.stream_id != request.match_info["stream_id"]:
        return problem(404, "no such WHIP session")
    await close_session(request.app, session)
    return web.Response(status=200)


@routes.patch("/whip/{stream_id}/{session_id}")
async def trickle(request: web.Request) -> web.Response:
    # Candidates all travel in the offer and answer (aiortc gathers before answering).
    return problem(405, "trickle ICE is not supported: send every candidate in the offer",
                   Allow="DELETE")


async def close_session(app: web.Application, session: WhipSession) -> None:
    if sessions(app).pop(session.id, None) is None:
        return
    session.inbox.detach(session.id)
    for task in session.tasks:
        task.cancel()
    await session.peer.close()
    log.info("stream %s: WHIP publisher left (session %s)", session.stream_id, session.id[:8])


async def close_stream(app: web.Application, stream_id: str) -> None:
    """Hang up on the publisher of a stream the operator removed."""
    for session in list(sessions(app).values()):
        if session.stream_id == stream_id:
            await close_session(app, session)


async def close_all(app: web.Application) -> None:
    for session in list(sessions(app).values()):
        await close_session(app, session)


def _peer(app: web.Application) -> RTCPeerConnection:
    servers = [RTCIceServer(uri) for uri in app[keys.CONFIG].ice_servers]
    return RTCPeerConnection(RTCConfiguration(iceServers=servers))


async def _answer(session: WhipSession, offer: str, app: web.Application | None = None) -> str:
    peer, app_loop = session.peer, asyncio.get_running_loop()

    @peer.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        # Audio is read and dropped: aiortc queues received frames without bound otherwise.
        pump = _pump(session, track) if track.kind == "video" else _drain(track)
        session.tasks.add(app_loop.create_task(pump))

    @peer.on("connectionstatechange")
    async def on_state() -> None:
        if peer.connectionState in ("failed", "closed"):
            # The publisher vanished without a DELETE (crash, network): forget the session too.
            session.inbox.detach(session.id)
            if app is not None:
                app_loop.create_task(close_session(app, session))

    await peer.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    for transceiver in peer.getTransceivers():
        if transceiver.kind == "video":
            transceiver.direction = "recvonly"
    await peer.setLocalDescription(await peer.createAnswer())
    return peer.localDescription.sdp


async def _pump(session: WhipSession, track: MediaStreamTrack) -> None:
    """Decoded frames from the publisher into the stream's inbox, until the track ends."""
    try:
        while True:
            frame = await track.recv()
            session.inbox.put(session.id, frame)
    except MediaStreamError:
        pass
    finally:
        session.inbox.detach(session.id)


async def _drain(track: MediaStreamTrack) -> None:
    try:
        while True:
            await track.recv()
    except MediaStreamError:
        pass
