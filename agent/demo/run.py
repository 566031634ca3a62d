"""`verity demo`: the whole path on an embedded default, with a verdict on the outcome.

Builds the synthetic clip (agent.demo.clip), starts an embedded real Redis, runs the agent on
the clip exactly as `verity run` would, reads the alerts back from the Redis Stream with a
consumer group, prints them, and passes only if the manipulated part raised an alert and the
real part did not.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from agent.alerts.schema import Alert
from agent.alerts.tail import format_alert_line, tail_alerts
from agent.config import StreamConfig, VerityConfig
from agent.demo.clip import DemoClip, build_clip


@dataclass
class DemoOutcome:
    clip: DemoClip
    alerts: list[Alert]
    passed: bool
    reason: str
    latency_s: float | None
    """Stream seconds from the manipulation's onset to the `new` alert's raise."""
    wall_s: float


def judge(clip: DemoClip, alerts: list[Alert], analysed_until: float) -> tuple[bool, str, float | None]:
    """Pass iff no alert began before the onset and one was raised after it."""
    news = [a for a in alerts if a.event == "new"]
    early = [a for a in news if clip.onset is None or a.started_at < clip.onset - 0.2]
    late = [a for a in news if clip.onset is not None and a.started_at >= clip.onset - 0.2]
    if early:
        return False, f"an alert was raised on the real part (t={early[0].started_at:.2f} s)", None
    if not late:
        return False, "the manipulated part raised no alert", None
    # The `new` event is published when the score has held above threshold for
    # min_duration_s; its raise time is the last_seen_at of that first event.
    latency = late[0].last_seen_at - clip.onset
    return True, f"alert {latency:.2f} s (stream time) after the onset, none before", latency


def run_demo(config: VerityConfig, workdir: Path, seed: int = 7) -> DemoOutcome:
    from agent.app import Agent

    started = time.monotonic()
    clip = build_clip(workdir / "verity-demo.mp4", seed=seed)
    stream = StreamConfig(url=str(clip.path), id="demo", kind="file")
    config = config.model_copy(
        update={
            "streams": [stream],
            "alerts": config.alerts.model_copy(update={"redis_url": "embedded"}),
        }
    )
    with Agent(config) as agent:
        result = agent.run(threading.Event())
        client = redis.Redis.from_url(agent.redis_url)
        alerts: list[Alert] = []
        deadline = time.monotonic() + 5.0
        if result.alerts_published:
            for _id, alert in tail_alerts(
                client, config.alerts.stream_key, "verity-demo", "demo", from_start=True,
                block_ms=200, stop=lambda: time.monotonic() > deadline,
            ):
                alerts.append(alert)
                if len(alerts) >= result.alerts_published:
                    break
        for alert in alerts:
            if alert.event == "new" and alert.snapshot and alert.snapshot.frame_key:
                for key, name in ((alert.snapshot.frame_key, "frame"), (alert.snapshot.explanation_key, "explanation")):
                    blob = client.get(key) if key else None
                    if blob:
                        (workdir / f"alert-{alert.alert_id[:8]}-{name}.jpg").write_bytes(blob)
        client.close()
    passed, reason, latency = judge(clip, alerts, clip.frames / clip.fps)
    return DemoOutcome(clip, alerts, passed, reason, latency, time.monotonic() - started)


def print_outcome(outcome: DemoOutcome, as_json: bool) -> None:
    clip = outcome.clip
    if as_json:
        print(json.dumps({
            "passed": outcome.passed,
            "reason": outcome.reason,
            "onset_s": clip.onset,
            "latency_s": outcome.latency_s,
            "alerts": [json.loads(a.to_json()) for a in outcome.alerts],
        }, indent=2))
        return
    print(f"Clip: {clip.path} ({clip.frames / clip.fps:.0f} s, {clip.width}x{clip.height}, "
          f"{clip.fps} fps; SYNTHETIC: a still photo, real for {clip.onset:.0f} s, then self-blended)")
    print(f"Alerts read back from Redis ({len(outcome.alerts)}):")
    for alert in outcome.alerts:
        print("  " + format_alert_line(alert))
    new = next((a for a in outcome.alerts if a.event == "new"), None)
    if new is not None:
        print("First alert as published (JSON):")
        print("  " + new.to_json())
    print(("PASS: " if outcome.passed else "FAIL: ") + outcome.reason + f" [{outcome.wall_s:.1f} s]")


def keep_or_temp(keep: Path | None):
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        return _Keep(keep)
    return tempfile.TemporaryDirectory(prefix="verity-demo-")


class _Keep:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> str:
        return str(self.path)

    def __exit__(self, *exc) -> None:
        pass
