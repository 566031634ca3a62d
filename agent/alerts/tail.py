"""`verity alerts tail`: read alerts from the Redis Stream with a consumer group.

A consumer group remembers what each consumer has acknowledged, so a tail that stops and
starts again resumes where it left off (first re-reading anything it received but never
acknowledged), and several consumers in one group share the work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import redis

from agent.alerts.schema import Alert


def ensure_group(client: redis.Redis, stream_key: str, group: str, from_start: bool) -> None:
    try:
        client.xgroup_create(stream_key, group, id="0" if from_start else "$", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def tail_alerts(
    client: redis.Redis,
    stream_key: str,
    group: str,
    consumer: str,
    *,
    from_start: bool = False,
    block_ms: int = 1000,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[tuple[str, Alert]]:
    """Yield (entry id, alert) and acknowledge each once the caller has taken it."""
    ensure_group(client, stream_key, group, from_start)
    # First our own pending entries (delivered before but never acknowledged), then new ones.
    cursor = "0"
    while not stop():
        reply = client.xreadgroup(group, consumer, {stream_key: cursor}, count=100, block=block_ms)
        entries = reply[0][1] if reply else []
        if cursor == "0" and not entries:
            cursor = ">"
            continue
        for entry_id, fields in entries:
            entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            if not fields:  # deleted (trimmed) while pending
                client.xack(stream_key, group, entry_id)
                continue
            try:
                yield entry_id, Alert.from_json(fields[b"alert"])
            finally:  # taken by the caller, also when it stops iterating right after
                client.xack(stream_key, group, entry_id)


def format_alert_line(alert: Alert) -> str:
    box = alert.box
    return (
        f"{alert.emitted_at:%H:%M:%S} {alert.event.upper():6} {alert.verdict:7} "
        f"stream={alert.stream_id} track={alert.track_id} score={alert.score:.2f} "
        f"(threshold {alert.threshold:.2f}, peak {alert.peak_score:.2f}) "
        f"t={alert.started_at:.2f}-{(alert.ended_at or alert.last_seen_at):.2f}s "
        f"box=({box.x1:.0f},{box.y1:.0f},{box.x2:.0f},{box.y2:.0f}) id={alert.alert_id[:8]}"
    )


def wait_for_redis(client: redis.Redis, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
