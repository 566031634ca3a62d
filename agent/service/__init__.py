"""The agent's HTTP service: health, metrics, control API, WHIP ingest, dashboard, upload."""

from agent.service.server import HttpService, ServiceError, build_app

__all__ = ["HttpService", "ServiceError", "build_app"]
