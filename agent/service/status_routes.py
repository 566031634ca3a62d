"""/healthz, /readyz (JSON) and /metrics (Prometheus text): open to probes, no token."""

from __future__ import annotations

import asyncio

from aiohttp import web

from agent.service import keys
from agent.service.status import health, metrics_text, readiness

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    ok, body = await asyncio.get_running_loop().run_in_executor(None, health, request.app[keys.AGENT])
    return web.json_response(body, status=200 if ok else 503)


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    ready, body = await asyncio.get_running_loop().run_in_executor(
        None, readiness, request.app[keys.AGENT]
    )
    return web.json_response(body, status=200 if ready else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        body=metrics_text(request.app[keys.AGENT]).encode(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )
