"""The agent's HTTP endpoint: health and metrics."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ServiceConfig(BaseModel):
    """HTTP health (/healthz) and Prometheus metrics (/metrics)."""

    model_config = ConfigDict(extra="forbid")

    http_host: str = Field("127.0.0.1", description="Address the HTTP endpoint binds to.")
    http_port: int | None = Field(
        None, ge=0, le=65535, description="Port for /healthz and /metrics; unset: no HTTP."
    )
