"""Publishes alerts to Redis: XADD to a Stream (durable, consumer groups) and PUBLISH (live).

Publishing happens on a sender thread so a slow or absent Redis never stalls analysis.
While Redis is unreachable, alerts wait in memory (alerts.buffer_size) and go out in order
when it returns; what is still unsent at shutdown, or overflows the buffer, is appended to
alerts.spool_path (or logged in full), so no alert is silently lost.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from agent.alerts.schema import Alert
from agent.config import AlertsConfig
from agent.redaction import redact_url

log = logging.getLogger("agent.alerts")


@dataclass
class Outgoing:
    alert: Alert
    blobs: dict[str, bytes] = field(default_factory=dict)
    """Redis key -> bytes to SET with the alert (snapshot JPEGs)."""


@dataclass
class SinkStats:
    published: int = 0
    buffered: int = 0
    spooled: int = 0
    failed_attempts: int = 0
    connected: bool = False
    last_error: str | None = None


class RedisAlertSink:
    def __init__(self, config: AlertsConfig, url: str | None = None) -> None:
        self.config = config
        self.url = url or config.redis_url
        if self.url == "embedded":
            raise ValueError("start the embedded Redis first and pass its URL")
        self._client = redis.Redis.from_url(
            self.url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30
        )
        self._queue: collections.deque[Outgoing] = collections.deque()
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._stats = SinkStats()
        self._idle = threading.Event()
        self._idle.set()

    # -- producer side -------------------------------------------------------------------
    def start(self) -> RedisAlertSink:
        self._thread = threading.Thread(target=self._run, name="verity-alert-sink", daemon=True)
        self._thread.start()
        return self

    def check(self) -> None:
        """Raise a clear error now if Redis cannot be reached (used at start-up)."""
        try:
            self._client.ping()
            self._stats.connected = True
        except redis.RedisError as exc:
            self._stats.last_error = str(exc)
            raise ConnectionError(f"Redis at {redact_url(self.url)} is unreachable: {exc}") from exc

    def ping(self) -> str | None:
        """None when Redis answers now, else the cause (for readiness and health)."""
        try:
            self._client.ping()
        except redis.RedisError as exc:
            return f"Redis at {redact_url(self.url)} is unreachable: {exc}"
        return None

    def fetch(self, key: str) -> bytes | None:
        """A stored blob (an alert's snapshot JPEG), None when gone or Redis is unreachable."""
        try:
            value = self._client.get(key)
        except redis.RedisError:
            return None
        return value if isinstance(value, bytes) else None

    def publish(self, alert: Alert, blobs: dict[str, bytes] | None = None) -> None:
        with self._cond:
            if len(self._queue) >= self.config.buffer_size:
                self._spool([self._queue.popleft()], "alert buffer full (Redis unreachable)")
            self._queue.append(Outgoing(alert, blobs or {}))
            self._idle.clear()
            self._cond.notify()

    @property
    def stats(self) -> SinkStats:
        with self._cond:
            self._stats.buffered = len(self._queue)
            return SinkStats(**vars(self._stats))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued is published; False on timeout."""
        return self._idle.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Publish what is queued (up to timeout), spool the rest, stop the thread."""
        self.flush(timeout)
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=max(timeout, 1.0))
        with self._cond:
            leftover = list(self._queue)
            self._queue.clear()
        if leftover:
            self._spool(leftover, "still unsent at shutdown")
        self._client.close()

    # -- sender thread -------------------------------------------------------------------
    def _run(self) -> None:
        backoff = 0.5
        outage_since: float | None = None
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._idle.set()
                    self._cond.wait()
                if self._stop:
                    return
                item = self._queue[0]
            try:
                self._send(item)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self._stats.failed_attempts += 1
                self._stats.connected = False
                self._stats.last_error = str(exc)
                if outage_since is None:
                    outage_since = time.monotonic()
                    log.warning(
                        "Redis at %s unreachable (%s); buffering alerts (%d queued), retrying",
                        redact_url(self.url), exc, len(self._queue),
                    )
                with self._cond:
                    self._cond.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            except redis.RedisError as exc:
                # Not an outage: this alert cannot be stored as configured (e.g. the stream key
                # holds another type). Keep it on disk or in the log, and go on.
                self._stats.last_error = str(exc)
                log.error("Redis refused alert %s: %s", item.alert.alert_id, exc)
                with self._cond:
                    self._queue.popleft()
                self._spool([item], f"Redis refused it: {exc}")
                continue
            with self._cond:
                self._queue.popleft()
                self._stats.published += 1
                self._stats.connected = True
            if outage_since is not None:
                log.warning(
                    "Redis at %s reachable again after %.1f s; sending buffered alerts",
                    redact_url(self.url), time.monotonic() - outage_since,
                )
                outage_since = None
            backoff = 0.5

    def _send(self, item: Outgoing) -> None:
        alert = item.alert
        document = alert.to_json()
        fields = {
            "alert": document,
            "event": alert.event,
            "alert_id": alert.alert_id,
            "sequence": alert.sequence,
            "stream_id": alert.stream_id,
            "track_id": alert.track_id,
            "verdict": alert.verdict,
            "score": f"{alert.score:.4f}",
        }
        pipe = self._client.pipeline(transaction=True)
        ttl = self.config.snapshot.ttl_s
        for key, blob in item.blobs.items():
            pipe.set(key, blob, ex=ttl)
        pipe.xadd(self.config.stream_key, fields, maxlen=self.config.stream_maxlen, approximate=True)
        pipe.publish(self.config.channel, document)
        pipe.execute()

    def _spool(self, items: list[Outgoing], why: str) -> None:
        self._stats.spooled += len(items)
        path: Path | None = self.config.spool_path
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "a") as handle:
                    handle.writelines(item.alert.to_json() + "\n" for item in items)
                log.error("%d alert(s) %s: appended to %s", len(items), why, path)
                return
            except OSError as exc:
                log.error("cannot write the alert spool %s: %s", path, exc)
        for item in items:
            log.error("alert %s (%s): %s", item.alert.alert_id, why, item.alert.to_json())


def read_alerts(client: redis.Redis, stream_key: str, count: int = 1000) -> list[Alert]:
    """Every alert currently in the stream, oldest first (for tools and tests)."""
    entries = client.xrange(stream_key, count=count)
    return [Alert.from_json(fields[b"alert"]) for _id, fields in entries]
