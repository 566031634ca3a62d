"""The agent's HTTP service: health, metrics, control API, WHIP ingest, dashboard, upload."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class ServiceConfig(BaseModel):
    """HTTP: /healthz, /readyz, /metrics (open), and behind the token the control API
    (/api/streams), WHIP ingest (/whip/<stream id>), the dashboard (/) and upload (/upload)."""

    model_config = ConfigDict(extra="forbid")

    http_host: str = Field("127.0.0.1", description="Address the HTTP service binds to.")
    http_port: int | None = Field(
        None, ge=0, le=65535, description="Port of the HTTP service; unset: no HTTP."
    )
    token: SecretStr | None = Field(
        None,
        description="Bearer token every endpoint but /healthz, /readyz and /metrics asks for "
        "(`Authorization: Bearer <token>`; env VERITY_SERVICE__TOKEN). Unset: reading is open "
        "and changes (adding streams, WHIP, uploads) are refused unless bound to a loopback "
        "address.",
    )
    keep_running: bool = Field(
        False,
        description="Keep running when no stream is left (or none was configured): streams "
        "come and go through the control API and WHIP.",
    )
    ice_servers: list[str] = Field(
        default_factory=list,
        description="STUN/TURN URIs for WebRTC (e.g. stun:stun.example.org:3478); empty: "
        "publishers reach the agent directly (same network, or a sidecar next to the SFU).",
    )
    max_upload_mb: float = Field(
        200.0, gt=0, description="Largest file POST /api/score (the upload page) accepts."
    )
    idle_timeout_s: float = Field(
        30.0, gt=0, description="Close an HTTP connection idle for this long."
    )

    @property
    def open_for_changes_without_token(self) -> bool:
        return self.http_host in LOOPBACK_HOSTS
