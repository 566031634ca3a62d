"""Publishes alerts to Redis: XADD to a Stream (durable, consumer groups) and PUBLISH (live).

Publishing happens on a sender thread so a slow or absent Redis never stalls analysis.
While Redis is unreachable, alerts go to the spool (`alerts.spool_path`: on disk, fsync'd,
snapshots included) and are replayed in order when it returns, or at the next start after a
crash; without a spool they wait in memory (`alerts.buffer_size`) and what is still unsent at
shutdown is written to the log in full. Delivery is at-least-once: an alert replayed after a
crash may arrive twice (consumers de-duplicate on alert_id and sequence).

A Redis that answers but refuses us (wrong password, ACL, TLS certificate) is not an outage:
`check()` raises `RedisRefused` so the agent stops at start with the cause.
"""

from __future__ import annotations

import collections
import logging
import ssl
import threading
import time
from dataclasses import dataclass, field

import redis

from agent.alerts.base import SinkStats
from agent.alerts.journal import AlertJournal
from agent.alerts.schema import Alert
from agent.config import AlertsConfig
from agent.redaction import redact_url

log = logging.getLogger("agent.alerts")


class RedisRefused(Exception):
    """Redis answered but will not take our alerts as configured; `str()` says why."""


@dataclass
class Outgoing:
    alert: Alert
    blobs: dict[str, bytes] = field(default_factory=dict)
    """Redis key -> bytes to SET with the alert (snapshot JPEGs)."""


def refusal(exc: BaseException) -> str | None:
    """Why Redis refuses us for good (credentials, permissions, TLS), None for an outage."""
    text = str(exc)
    if isinstance(exc, redis.AuthenticationError) or "WRONGPASS" in text or "NOAUTH" in text:
        return f"authentication failed ({text}): check the user and password in alerts.redis_url"
    if isinstance(exc, redis.exceptions.NoPermissionError) or "NOPERM" in text:
        return (f"permission denied ({text}): the ACL user needs XADD, PUBLISH, SET and PING on "
                "the alert keys")
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
        return f"TLS certificate check failed ({text}): check ssl_ca_certs / the server name"
    if isinstance(cause, ssl.SSLError) or "SSL" in text and "wrong version" in text:
        return f"TLS handshake failed ({text}): is the server speaking TLS (rediss://)?"
    return None


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
        self._journal = AlertJournal(config.spool_path) if config.spool_path else None
        self._spooling = False
        """True while alerts go to the spool first (Redis down, or the spool not yet replayed)."""
        self._spool_offset = 0
        """Bytes of the spool already replayed to Redis."""
        if self._journal is not None and self._journal.size():
            left = len(self._journal.pending())
            self._spooling = True
            self._stats.spool_pending = left
            log.warning("%d alert(s) in the spool %s from an earlier run: sending them first",
                        left, config.spool_path)

    # -- producer side -------------------------------------------------------------------
    def start(self) -> RedisAlertSink:
        self._thread = threading.Thread(target=self._run, name="verity-alert-sink", daemon=True)
        self._thread.start()
        return self

    def check(self) -> None:
        """At start: raise RedisRefused if Redis refuses us (credentials, ACL, TLS), or
        ConnectionError if it cannot be reached (then alerts wait for it)."""
        try:
            self._client.ping()
            self._stats.connected = True
        except redis.RedisError as exc:
            self._stats.last_error = str(exc)
            why = refusal(exc)
            if why is not None:
                raise RedisRefused(f"Redis at {redact_url(self.url)}: {why}") from None
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
        item = Outgoing(alert, blobs or {})
        with self._cond:
            if self._spooling and self._to_journal([item]):
                self._cond.notify()
                return
            if len(self._queue) >= self.config.buffer_size:
                self._spool([self._queue.popleft()], "alert buffer full (Redis unreachable)")
            self._queue.append(item)
            self._cond.notify()

    @property
    def stats(self) -> SinkStats:
        with self._cond:
            self._stats.buffered = len(self._queue)
            return SinkStats(**vars(self._stats))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything is published (True), at most `timeout` s (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._spooling:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
            return True

    def close(self, timeout: float = 10.0) -> None:
        """Publish what is queued (up to timeout), spool the rest, stop the thread."""
        self.flush(timeout)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=max(min(timeout, 5.0), 1.0))
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
                while not self._queue and not self._spooling and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                spooling = self._spooling
                item = None if spooling else self._queue[0]
            try:
                if spooling:
                    self._replay()
                else:
                    self._send(item)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self._stats.failed_attempts += 1
                self._stats.connected = False
                self._stats.last_error = str(exc)
                with self._cond:
                    if self._journal is not None and self._queue:
                        # Keep them on disk from now on: a crash during the outage loses none.
                        if self._to_journal(list(self._queue)):
                            self._queue.clear()
                    if self._journal is not None:
                        self._spooling = True
                    self._cond.notify_all()
                if outage_since is None:
                    outage_since = time.monotonic()
                    where = f"spooling to {self.config.spool_path}" if self._journal else \
                        f"buffering alerts in memory ({len(self._queue)} queued)"
                    why = refusal(exc)
                    log.warning("Redis at %s unreachable (%s); %s, retrying", redact_url(self.url),
                                why or exc, where)
                with self._cond:
                    if not self._stop:
                        self._cond.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            except redis.RedisError as exc:
                # Not an outage: this alert cannot be stored as configured (e.g. the stream key
                # holds another type). Keep it on disk or in the log, and go on.
                self._stats.last_error = str(exc)
                log.error("Redis refused alert %s: %s", item.alert.alert_id if item else "?", exc)
                if item is not None:
                    with self._cond:
                        self._queue.popleft()
                    self._spool([item], f"Redis refused it: {exc}")
                continue
            with self._cond:
                if item is not None:
                    self._queue.popleft()
                    self._stats.published += 1
                self._stats.connected = True
                self._cond.notify_all()
            if outage_since is not None:
                log.warning(
                    "Redis at %s reachable again after %.1f s; sent what waited",
                    redact_url(self.url), time.monotonic() - outage_since,
                )
                outage_since = None
            backoff = 0.5

    def _replay(self) -> None:
        """Send the spool from where the last replay stopped; empty it once all is sent."""
        assert self._journal is not None
        self._client.ping()  # an outage raises here, before anything is read
        for offset, alert, blobs in self._journal.pending(self._spool_offset):
            self._send(Outgoing(alert, blobs))
            with self._cond:
                self._spool_offset = offset
                self._stats.published += 1
                self._stats.spool_pending = max(self._stats.spool_pending - 1, 0)
        with self._cond:
            if self._journal.clear_if_size(self._spool_offset):
                self._spooling = False
                self._spool_offset = 0
                self._stats.spool_pending = 0
            self._cond.notify_all()

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

    def _to_journal(self, items: list[Outgoing]) -> bool:
        """Append to the spool (caller holds the lock); False when there is none or it fails."""
        if self._journal is None:
            return False
        try:
            self._journal.append([(i.alert, i.blobs) for i in items])
        except OSError as exc:
            log.error("cannot write the alert spool %s: %s; keeping alerts in memory",
                      self.config.spool_path, exc)
            return False
        self._stats.spooled += len(items)
        self._stats.spool_pending += len(items)
        return True

    def _spool(self, items: list[Outgoing], why: str) -> None:
        if self._to_journal(items):
            log.error("%d alert(s) %s: kept in the spool %s (sent at the next start)",
                      len(items), why, self.config.spool_path)
            return
        self._stats.spooled += len(items)
        for item in items:
            log.error("alert %s (%s): %s", item.alert.alert_id, why, item.alert.to_json())


def read_alerts(client: redis.Redis, stream_key: str, count: int = 1000) -> list[Alert]:
    """Every alert currently in the stream, oldest first (for tools and tests)."""
    entries = client.xrange(stream_key, count=count)
    return [Alert.from_json(fields[b"alert"]) for _id, fields in entries]
