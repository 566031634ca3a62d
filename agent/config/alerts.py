"""Where alerts go: a Redis Stream (durable) and a Pub/Sub channel (live)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from agent.redaction import redact_url


class SnapshotConfig(BaseModel):
    """JPEG of the frame that raised the alert, with the face box drawn."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Attach a snapshot to new alerts.")
    ttl_s: int = Field(
        7 * 24 * 3600, ge=60, description="Snapshots live in Redis keys that expire after this."
    )
    jpeg_quality: int = Field(85, ge=10, le=100, description="Snapshot JPEG quality.")
    dir: Path | None = Field(None, description="Also write snapshots as files in this folder.")


class AlertsConfig(BaseModel):
    """Redis alert sink."""

    model_config = ConfigDict(extra="forbid")

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis to publish to (redis://, rediss://, unix://), or `embedded` to start a "
        "private Redis server for this process (demo, single-host trials).",
    )
    stream_key: str = Field("verity:alerts", min_length=1, description="Redis Stream key.")
    stream_maxlen: int = Field(
        100_000, ge=100, description="Approximate cap on the Stream's length (XADD MAXLEN ~)."
    )
    channel: str = Field("verity:alerts:live", min_length=1, description="Pub/Sub channel.")
    buffer_size: int = Field(
        10_000,
        ge=1,
        description="Alerts held in memory while Redis is unreachable, sent in order on return.",
    )
    spool_path: Path | None = Field(
        None,
        description="While Redis is unreachable, alerts (and their snapshots) are kept here on "
        "disk, one JSON line each, fsync'd, and sent in order when it returns or at the next "
        "start, so a crash loses none (unset: they wait in memory, and what is unsent at "
        "shutdown is written to the log).",
    )
    shutdown_timeout_s: float = Field(
        5.0, ge=0, description="At shutdown, wait at most this long for Redis to take what is "
        "queued; the rest goes to the spool (or the log)."
    )
    snapshot: SnapshotConfig = Field(default_factory=SnapshotConfig)

    @field_serializer("redis_url", when_used="json")
    def _hide_password(self, url: str) -> str:
        return redact_url(url)

    @field_validator("redis_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value == "embedded" or value.split("://", 1)[0] in ("redis", "rediss", "unix"):
            return value
        raise ValueError("must be redis://host:port/db, rediss://..., unix:///path, or embedded")
