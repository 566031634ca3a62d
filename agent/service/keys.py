"""Typed keys of what the aiohttp application holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from agent.config.service import ServiceConfig
from agent.service.events import EventHub

if TYPE_CHECKING:
    from agent.app import Agent

AGENT: web.AppKey[Agent] = web.AppKey("agent", object)  # type: ignore[arg-type]
CONFIG = web.AppKey("config", ServiceConfig)
HUB = web.AppKey("hub", EventHub)
WHIP_SESSIONS: web.AppKey[dict[str, Any]] = web.AppKey("whip_sessions", dict)
UPLOAD_JUDGE: web.AppKey[Any] = web.AppKey("upload_judge", object)
