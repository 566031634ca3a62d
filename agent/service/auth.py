"""Who may do what on the HTTP service.

`/healthz`, `/readyz`, `/metrics` and the pages' static shells are open (probes and
Prometheus carry no token; the pages hold no data until their scripts call the API). Every
other path needs `Authorization: Bearer <service.token>`. With no token configured, reading
stays open and changes (POST, PUT, PATCH, DELETE) are accepted only on a loopback-bound
service, where only this host can reach them.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from agent.config.service import ServiceConfig

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/", "/upload", "/favicon.ico"})
OPEN_PREFIXES = ("/static/",)
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem(status: int, detail: str, **headers: str) -> web.Response:
    """An error reply: JSON `{"error": ...}` (RFC 9457's spirit, kept small)."""
    return web.Response(
        status=status, text=json.dumps({"error": detail}), content_type="application/json",
        headers=headers,
    )


def auth_middleware(config: ServiceConfig) -> Callable:
    token = config.token.get_secret_value().encode() if config.token else None

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return await handler(request)
        if token is None:
            if request.method in _READ_METHODS or config.open_for_changes_without_token:
                return await handler(request)
            return problem(
                403,
                "changes need a token: set service.token (VERITY_SERVICE__TOKEN) when the "
                "service listens beyond this host",
            )
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token):
            return problem(
                401, "missing or wrong bearer token", **{"WWW-Authenticate": 'Bearer realm="verity"'}
            )
        return await handler(request)

    return check
