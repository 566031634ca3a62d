"""Alerts: the versioned schema, the Redis sink, the embedded Redis, and the tail reader."""

from agent.alerts.base import AlertSink, SinkStats
from agent.alerts.schema import SCHEMA_VERSION, Alert, FaceBox, Snapshot
from agent.alerts.sink import RedisAlertSink, RedisRefused, read_alerts

__all__ = [
    "SCHEMA_VERSION", "Alert", "AlertSink", "SinkStats", "FaceBox", "RedisAlertSink", "RedisRefused", "Snapshot", "read_alerts",
]
