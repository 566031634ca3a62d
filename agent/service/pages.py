"""The operator's pages and their feeds.

    GET /                          dashboard: streams, live face tracks, alert feed
    GET /upload                    upload page (POST /api/score)
    GET /static/{name}             their scripts and styles
    GET /api/events                server-sent events: `streams` every half second, `alert`
                                   as each is published
    GET /api/alerts                the most recent alerts
    GET /api/alerts/{id}/{frame|explanation}.jpg   an alert's evidence, from Redis

The pages are static shells; their data comes from the API with the bearer token (kept in
the browser's session storage, entered once or passed as `#token=...`).
"""

from __future__ import annotations

import asyncio
import json
import re
from importlib.resources import files

from aiohttp import web

from agent.service import keys
from agent.service.auth import problem
from agent.service.status import stream_view

routes = web.RouteTableDef()

STATIC = files("agent.service") / "static"
_STATIC_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
                 ".svg": "image/svg+xml"}
_SAFE_NAME = re.compile(r"^[a-z0-9-]+\.(js|css|svg|html)$")
_ALERT_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")
STREAMS_EVERY_S = 0.5
_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _static(name: str) -> web.Response:
    resource = STATIC / name
    if not _SAFE_NAME.match(name) or not resource.is_file():
        raise web.HTTPNotFound()
    suffix = name[name.rindex("."):]
    return web.Response(body=resource.read_bytes(), content_type=_STATIC_TYPES[suffix],
                        headers=_HEADERS)


@routes.get("/")
async def dashboard(_request: web.Request) -> web.Response:
    return _static("dashboard.html")


@routes.get("/upload")
async def upload_page(_request: web.Request) -> web.Response:
    return _static("upload.html")


@routes.get("/static/{name}")
async def static(request: web.Request) -> web.Response:
    return _static(request.match_info["name"])


@routes.get("/api/alerts")
async def recent_alerts(request: web.Request) -> web.Response:
    hub = request.app[keys.HUB]
    return web.json_response(
        {"alerts": [json.loads(alert.to_json()) for alert in list(hub.recent)]}
    )


@routes.get("/api/alerts/{alert_id}/{kind}.jpg")
async def evidence(request: web.Request) -> web.Response:
    alert_id, kind = request.match_info["alert_id"], request.match_info["kind"]
    if not _ALERT_ID.match(alert_id) or kind not in ("frame", "explanation"):
        return problem(404, "no such evidence")
    alert = request.app[keys.HUB].find(alert_id)
    if alert is None or alert.snapshot is None:
        return problem(404, f"no evidence for alert {alert_id} (not seen by this agent)")
    key = alert.snapshot.frame_key if kind == "frame" else alert.snapshot.explanation_key
    sink = request.app[keys.AGENT].sink
    blob = await asyncio.get_running_loop().run_in_executor(None, sink.fetch, key) if key else None
    if blob is None:
        return problem(404, f"the {kind} of alert {alert_id} has expired or Redis is unreachable")
    return web.Response(body=blob, content_type="image/jpeg", headers=_HEADERS)


@routes.get("/api/events")
async def events(request: web.Request) -> web.StreamResponse:
    hub = request.app[keys.HUB]
    agent = request.app[keys.AGENT]
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no",
    })
    await response.prepare(request)
    queue = hub.subscribe()
    try:
        while True:
            streams = [stream_view(slot) for slot in agent.pipeline.slots] if agent.pipeline else []
            await response.write(_event("streams", {"streams": streams}))
            try:
                alert = await asyncio.wait_for(queue.get(), STREAMS_EVERY_S)
            except asyncio.TimeoutError:
                continue
            if alert is None:  # shutting down
                break
            await response.write(_event("alert", json.loads(alert.to_json())))
            while not queue.empty():
                alert = queue.get_nowait()
                if alert is None:
                    return response
                await response.write(_event("alert", json.loads(alert.to_json())))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        hub.unsubscribe(queue)
    return response


def _event(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()

