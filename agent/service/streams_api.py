"""The control API: list, add and remove streams while the agent runs.

    GET    /api/streams          every stream: labels, state, counters, live tracks
    GET    /api/streams/{id}     one stream
    POST   /api/streams          JSON: a stream as in the config (url, id, kind, room, ...)
    DELETE /api/streams/{id}     stop watching it (its open alerts get their `end`)
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web
from pydantic import ValidationError

from agent.config.ingest import StreamConfig
from agent.redaction import redact_text
from agent.service import keys, whip
from agent.service.auth import problem
from agent.service.status import stream_view

routes = web.RouteTableDef()


def _pipeline(request: web.Request):
    pipeline = request.app[keys.AGENT].pipeline
    if pipeline is None:
        raise web.HTTPServiceUnavailable(text="the agent is starting")
    return pipeline


@routes.get("/api/streams")
async def list_streams(request: web.Request) -> web.Response:
    pipeline = _pipeline(request)
    return web.json_response({"streams": [stream_view(slot) for slot in pipeline.slots]})


@routes.get("/api/streams/{stream_id}")
async def get_stream(request: web.Request) -> web.Response:
    slot = _pipeline(request).slot(request.match_info["stream_id"])
    if slot is None:
        return problem(404, f"no stream {request.match_info['stream_id']!r}")
    return web.json_response(stream_view(slot))


@routes.post("/api/streams")
async def add_stream(request: web.Request) -> web.Response:
    pipeline = _pipeline(request)
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return problem(400, "the body must be a JSON object describing a stream")
    if not isinstance(body, dict):
        return problem(400, "the body must be a JSON object describing a stream")
    try:
        stream = StreamConfig.model_validate(body)
    except ValidationError as exc:
        errors = [
            f"{'.'.join(str(p) for p in err['loc']) or 'stream'}: {redact_text(err['msg'])}"
            for err in exc.errors()
        ]
        return problem(422, "; ".join(errors))
    try:
        slot = pipeline.add_stream(stream, start=True)
    except ValueError as exc:
        return problem(409, str(exc))
    return web.json_response(
        stream_view(slot), status=201, headers={"Location": f"/api/streams/{stream.id}"}
    )


@routes.delete("/api/streams/{stream_id}")
async def remove_stream(request: web.Request) -> web.Response:
    pipeline = _pipeline(request)
    stream_id = request.match_info["stream_id"]
    loop = asyncio.get_running_loop()
    removed = await loop.run_in_executor(None, pipeline.remove_stream, stream_id)
    if not removed:
        return problem(404, f"no stream {stream_id!r}")
    await whip.close_stream(request.app, stream_id)
    return web.Response(status=204)
