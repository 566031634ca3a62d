"""Where alerts go, as the rest of the agent sees it: one small interface.

The publisher hands alerts to `publish`; health, readiness, metrics and the dashboard read
`stats`, `ping` and `fetch`. Redis (agent.alerts.sink.RedisAlertSink) is the implementation;
nothing else reaches into it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from agent.alerts.schema import Alert


@dataclass
class SinkStats:
    published: int = 0
    buffered: int = 0
    """Alerts waiting in memory."""
    spooled: int = 0
    """Alerts written to the spool (or, without one, to the log) because Redis did not take
    them in time, since start."""
    spool_pending: int = 0
    """Alerts in the spool not yet sent (including any left by a previous run)."""
    failed_attempts: int = 0
    connected: bool = False
    last_error: str | None = None


class AlertSink(Protocol):
    def check(self) -> None:
        """At start: raise when the destination refuses us for good (credentials, TLS)."""

    def publish(self, alert: Alert, blobs: dict[str, bytes] | None = None) -> None:
        """Queue an alert (and the evidence blobs it names); never blocks on the network."""

    @property
    def stats(self) -> SinkStats: ...

    def ping(self) -> str | None:
        """None when the destination answers now, else why not."""

    def fetch(self, key: str) -> bytes | None:
        """An evidence blob an alert names, None when gone or unreachable."""

    def flush(self, timeout: float = 10.0) -> bool: ...

    def close(self, timeout: float = 10.0) -> None: ...
