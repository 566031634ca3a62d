"""The HTTP service: one aiohttp application on its own event-loop thread beside the agent.

Asynchronous, so idle or slow connections cost a coroutine, not a thread, and WebRTC
(aiortc) shares the loop. Routes: status (health, readiness, metrics), the control API,
WHIP ingest, and the operator's pages.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import threading
from typing import TYPE_CHECKING

from aiohttp import web

from agent.config.service import ServiceConfig
from agent.service import keys, pages, status_routes, streams_api, upload, whip
from agent.service.auth import auth_middleware
from agent.service.events import EventHub

if TYPE_CHECKING:
    from agent.app import Agent

log = logging.getLogger("agent.service")


class ServiceError(RuntimeError):
    """The HTTP service cannot start (e.g. its port is taken); the message says why."""


def build_app(agent: Agent, config: ServiceConfig, hub: EventHub) -> web.Application:
    app = web.Application(
        middlewares=[auth_middleware(config)],
        client_max_size=int(config.max_upload_mb * 1024 * 1024),
    )
    app[keys.AGENT] = agent
    app[keys.CONFIG] = config
    app[keys.HUB] = hub
    app[keys.WHIP_SESSIONS] = {}
    app[keys.UPLOAD_JUDGE] = upload.UploadJudge(agent.config)
    for table in (status_routes.routes, streams_api.routes, whip.routes, pages.routes,
                  upload.routes):
        app.add_routes(table)
    app.on_shutdown.append(whip.close_all)
    app.on_shutdown.append(upload.close)
    app.on_shutdown.append(hub.close)
    return app


class HttpService:
    """Start binds the port (or raises ServiceError); stop closes every session and the loop."""

    def __init__(self, agent: Agent, config: ServiceConfig) -> None:
        self.agent = agent
        self.config = config
        self.hub = EventHub()
        self.port: int | None = None
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="verity-http", daemon=True)

    def start(self) -> HttpService:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        try:
            self.port = future.result(timeout=30)
        except BaseException:
            self._stop_loop()
            raise
        self.hub.bind(self._loop)
        where = self.config.http_host
        log.info("HTTP service on http://%s:%d (dashboard /, API /api, WHIP /whip/<id>)",
                 f"[{where}]" if ":" in where else where, self.port)
        return self

    async def _serve(self) -> int:
        app = build_app(self.agent, self.config, self.hub)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, keepalive_timeout=self.config.idle_timeout_s
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.http_host, self.config.http_port or 0)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            where = f"{self.config.http_host}:{self.config.http_port}"
            if exc.errno == errno.EADDRINUSE:
                raise ServiceError(
                    f"service.http_port: {where} is already in use (another agent?); choose "
                    "another port"
                ) from None
            raise ServiceError(f"service.http_host/http_port: cannot listen on {where}: "
                               f"{exc.strerror or exc}") from None
        return self._runner.addresses[0][1]

    def stop(self) -> None:
        if self._runner is not None and self._loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            try:
                future.result(timeout=10)
            except Exception:
                log.warning("HTTP service did not close cleanly", exc_info=True)
            self._runner = None
        self._stop_loop()

    def _stop_loop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()
