"""`verity soak`: N looping streams for a long while; resources printed as they go.

What a week-long deployment would show in hours: memory, threads or open files that grow
with time. The agent runs as `verity run` does (embedded Redis, every stream a looping
realtime copy of the demo clip, a face turning fake each loop so alerts open and close), and
every `interval_s` a sample is taken: RSS, threads, open file descriptors, frames analysed,
alert events. Growth is measured from the first sample after `warmup_s` (models loaded, caches
and pools filled) to the last.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from agent import resources
from agent.config import StreamConfig, VerityConfig
from agent.demo.clip import build_clip


@dataclass
class Sample:
    elapsed_s: float
    rss_mb: float
    threads: int
    open_files: int
    frames_analysed: int
    alert_events: int


def sample(agent, started: float) -> Sample:
    stats = agent.pipeline.stats
    return Sample(
        elapsed_s=round(time.monotonic() - started, 1),
        rss_mb=round(resources.rss_mb(), 1),
        threads=resources.threads(),
        open_files=resources.open_files(),
        frames_analysed=stats.frames_analysed,
        alert_events=agent.sink.stats.published if agent.sink else 0,
    )


def growth(first: Sample, last: Sample) -> dict:
    return {
        "rss_pct": round(100 * (last.rss_mb - first.rss_mb) / first.rss_mb, 2),
        "threads": last.threads - first.threads,
        "open_files": last.open_files - first.open_files,
    }


def run_soak(
    config: VerityConfig, workdir: Path, *, streams: int, minutes: float, interval_s: float,
    warmup_s: float, report: Callable[[Sample], None],
) -> dict:
    from agent.app import Agent

    clip = build_clip(workdir / "soak.mp4", real_seconds=4, fake_seconds=4)
    config = config.model_copy(update={
        "streams": [StreamConfig(url=str(clip.path), id=f"soak{i:02d}", kind="file",
                                 realtime=True, loop=True) for i in range(streams)],
        "alerts": config.alerts.model_copy(update={"redis_url": "embedded"}),
    })
    stop = threading.Event()
    samples: list[Sample] = []
    with Agent(config) as agent:
        runner = threading.Thread(target=agent.run, args=(stop,), name="soak-agent")
        started = time.monotonic()
        runner.start()
        try:
            end = started + minutes * 60
            next_at = started + min(interval_s, warmup_s)
            while time.monotonic() < end and runner.is_alive():
                time.sleep(max(0.0, min(next_at, end) - time.monotonic()))
                samples.append(sample(agent, started))
                report(samples[-1])
                next_at += interval_s
        finally:
            stop.set()
            runner.join(60)
    after_warmup = [s for s in samples if s.elapsed_s >= warmup_s]
    base, last = (after_warmup[0], after_warmup[-1]) if len(after_warmup) >= 2 else (None, None)
    return {
        "streams": streams,
        "minutes": minutes,
        "warmup_s": warmup_s,
        "samples": [asdict(s) for s in samples],
        "growth_after_warmup": growth(base, last) if base else None,
    }
