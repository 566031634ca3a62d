"""The assembled agent: pipeline + alert publisher + Redis sink (+ embedded Redis, HTTP).

`verity run`, `verity demo` and `verity bench` all run this same object.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from agent.alerts.base import AlertSink
from agent.alerts.embedded import EmbeddedRedis
from agent.alerts.publisher import AlertPublisher
from agent.alerts.sink import RedisAlertSink
from agent.cluster import my_streams
from agent.config import VerityConfig
from agent.pipeline import Pipeline, PipelineStats
from agent.redaction import redact_url

log = logging.getLogger("agent")

FINISHED_TRACKS_KEPT = 200
"""Ended face tracks remembered per stream by a running agent."""


@dataclass
class RunResult:
    stats: PipelineStats
    failed_streams: dict[str, str]
    alerts_published: int
    alerts_unsent: int
    """Alerts Redis has not taken: in the spool (sent at the next start) or, without one,
    about to be written to the log."""


class Agent:
    """Use as a context manager: resources are released even when a run fails."""

    def __init__(self, config: VerityConfig) -> None:
        self.config = config
        self.embedded: EmbeddedRedis | None = None
        self.sink: AlertSink | None = None
        self.pipeline: Pipeline | None = None
        self.publisher: AlertPublisher | None = None
        self.http = None
        self.redis_url = config.alerts.redis_url
        self._flushed = False

    def __enter__(self) -> Agent:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        if self.redis_url == "embedded":
            self.embedded = EmbeddedRedis().start()
            self.redis_url = self.embedded.url
            log.info("embedded Redis at %s", self.redis_url)
        self.sink = RedisAlertSink(self.config.alerts, self.redis_url)
        try:
            self.sink.check()  # RedisRefused (password, ACL, TLS) ends the start here
        except ConnectionError as exc:
            kept = "spooled to disk" if self.config.alerts.spool_path else "buffered in memory"
            log.warning("%s; alerts will be %s until it answers", exc, kept)
        self.sink.start()
        config = self.config
        cluster = config.cluster
        if cluster.replicas > 1:  # one of N replicas: watch only this one's share
            mine = my_streams(config.streams, cluster.ordinal, cluster.replicas)
            log.info("replica %d of %d: watching %d of the %d configured streams (%s)",
                     cluster.ordinal, cluster.replicas, len(mine), len(config.streams),
                     ", ".join(s.id or "" for s in mine) or "none")
            config = config.model_copy(update={"streams": mine})
        # Ended tracks are kept only for summaries: a week-long run must not grow with them.
        self.pipeline = Pipeline(config, keep_finished=FINISHED_TRACKS_KEPT)
        self.publisher = AlertPublisher(
            self.config.alerts, self._publish, self.pipeline.scorer, self.pipeline.stream_config
        )
        self.pipeline.listeners.append(self.publisher)
        if self.config.service.http_port is not None:
            from agent.service import HttpService

            self.http = HttpService(self, self.config.service).start()
        log.info(
            "watching %d stream(s); alerts to %s stream %r and channel %r",
            len(self.pipeline.slots), redact_url(self.redis_url),
            self.config.alerts.stream_key, self.config.alerts.channel,
        )

    def _publish(self, alert, blobs: dict[str, bytes]) -> None:
        assert self.sink is not None
        self.sink.publish(alert, blobs)
        if self.http is not None:  # the dashboard's live feed
            self.http.hub.alert(alert)

    def run(self, stop: threading.Event | None = None) -> RunResult:
        assert self.pipeline is not None and self.sink is not None
        stats = self.pipeline.run(stop, stay_up=self.config.service.keep_running)
        if self.publisher is not None:
            self.publisher.close()  # every alert (with its evidence) handed to the sink
        self.sink.flush(timeout=self.config.alerts.shutdown_timeout_s)
        self._flushed = True
        sink_stats = self.sink.stats
        return RunResult(
            stats=stats,
            failed_streams=dict(self.pipeline.failed_streams),
            alerts_published=sink_stats.published,
            alerts_unsent=sink_stats.buffered + sink_stats.spool_pending,
        )

    def close(self) -> None:
        if self.http is not None:
            self.http.stop()
            self.http = None
        if self.publisher is not None:
            self.publisher.close()
        if self.sink is not None:
            # One deadline for the whole shutdown: run() already waited if it ran.
            wait = 0.0 if self._flushed else self.config.alerts.shutdown_timeout_s
            self.sink.close(timeout=wait)
            self.sink = None
        if self.pipeline is not None:
            self.pipeline.close()
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None
