"""Turns track events into alert documents (with evidence) and hands them to the sink."""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from agent.alerts.evidence import explanation_image, frame_snapshot, occlusion_map
from agent.alerts.schema import Alert, FaceBox, Snapshot
from agent.config import AlertsConfig, StreamConfig
from agent.pipeline.scorer import FaceScorer
from agent.pipeline.tracks import TrackEvent
from agent.redaction import redact_url
from agent.scoring.rolling import Transition

log = logging.getLogger("agent.alerts")


class AlertPublisher:
    """A pipeline listener. `publish` is the sink's (RedisAlertSink.publish).

    The alert document is built at once, from the track's state at the event; the evidence
    of a `new` alert (the boxed frame, the occlusion map: dozens of model calls and two JPEG
    encodes) is made on the publisher's own thread, so the analysis loop never waits for it
    (measured: a third of the loop's time at 24 streams when it did). One thread, one queue:
    an episode's events still reach the sink in order.
    """

    def __init__(
        self,
        config: AlertsConfig,
        publish: Callable[..., None],
        scorer: FaceScorer,
        stream_config: Callable[[str], StreamConfig | None],
    ) -> None:
        self.config = config
        self.publish = publish
        self.scorer = scorer
        self.stream_config = stream_config
        self.agent_name = f"{socket.gethostname()}:{os.getpid()}"
        self.sent: list[Alert] = []
        """Alerts handed to the sink in this process (for summaries; bounded by the caller)."""
        self._jobs: queue.Queue[tuple[Alert, TrackEvent | None, float] | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    def on_event(self, event: TrackEvent) -> None:
        state = event.state
        rolling = state.rolling
        score = float(rolling.value if rolling.value is not None else 0.0)
        width, height = state.frame_size
        x1, y1, x2, y2 = (float(v) for v in state.box)
        wants_evidence = (event.transition is Transition.NEW and self.config.snapshot.enabled
                          and event.observation is not None)
        stream = self.stream_config(state.stream_id)
        alert = Alert(
            event=event.transition.value,
            alert_id=state.alert_id or "",
            sequence=state.sequence,
            stream_id=state.stream_id,
            source=redact_url(stream.url) if stream else "",
            room=stream.room if stream else None,
            participant=stream.participant if stream else None,
            track_id=state.track_id,
            verdict="fake",
            score=min(max(score, 0.0), 1.0),
            peak_score=min(max(rolling.peak, score), 1.0),
            threshold=rolling.threshold,
            model_scores=dict(state.model_scores),
            models=self.scorer.model_ids,
            started_at=state.alert_started_at if state.alert_started_at is not None else event.time,
            last_seen_at=state.last_seen,
            ended_at=event.time if event.transition is Transition.END else None,
            end_reason=event.end_reason if event.transition is Transition.END else None,
            frames_judged=rolling.judged_frames,
            frames_unknown=rolling.unknown_frames,
            box=FaceBox(x1=x1, y1=y1, x2=x2, y2=y2, frame_width=width, frame_height=height),
            snapshot=None,
            emitted_at=datetime.now(timezone.utc),
            agent=self.agent_name,
        )
        log.info(
            "alert %s %s stream=%s track=%d score=%.2f",
            alert.event, alert.alert_id[:8], alert.stream_id, alert.track_id, alert.score,
        )
        self.sent.append(alert)
        if len(self.sent) > 10_000:
            del self.sent[:5_000]
        self._start_worker()
        self._jobs.put((alert, event if wants_evidence else None, score))

    # -- the publisher's thread --------------------------------------------------------------
    def _start_worker(self) -> None:
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="verity-publisher",
                                                daemon=True)
                self._worker.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            alert, event, score = job
            blobs: dict[str, bytes] = {}
            try:
                if event is not None:
                    snapshot, blobs = self._evidence(event, score)
                    alert = alert.model_copy(update={"snapshot": snapshot})
            except Exception:  # evidence is a courtesy: the alert goes out without it
                log.exception("alert %s: evidence failed; publishing without it", alert.alert_id)
            try:
                self.publish(alert, blobs)
            except Exception:
                log.exception("alert %s: the sink refused it", alert.alert_id)
            finally:
                self._jobs.task_done()
        self._jobs.task_done()

    def flush(self) -> None:
        """Wait until every alert so far is handed to the sink (evidence made)."""
        if self._worker is not None:
            self._jobs.join()

    def close(self) -> None:
        """Hand over what is queued, then stop the thread."""
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            self._jobs.put(None)
            worker.join()

    def _evidence(self, event: TrackEvent, score: float) -> tuple[Snapshot, dict[str, bytes]]:
        obs = event.observation
        cfg = self.config.snapshot
        alert_id = event.state.alert_id
        frame_jpeg = frame_snapshot(
            obs.frame.image, obs.box, f"fake? {score:.2f} track {event.state.track_id}", cfg.jpeg_quality
        )
        heat = occlusion_map(obs.crop, self.scorer.spatial_logits)
        explanation_jpeg = explanation_image(obs.crop, heat, quality=cfg.jpeg_quality)
        prefix = f"{self.config.stream_key}:snapshot:{alert_id}"
        snapshot = Snapshot(
            frame_key=f"{prefix}:frame", explanation_key=f"{prefix}:explanation", expires_in_s=cfg.ttl_s
        )
        if cfg.dir is not None:
            try:
                folder = Path(cfg.dir)
                folder.mkdir(parents=True, exist_ok=True)
                frame_path = folder / f"{alert_id}-frame.jpg"
                explanation_path = folder / f"{alert_id}-explanation.jpg"
                frame_path.write_bytes(frame_jpeg)
                explanation_path.write_bytes(explanation_jpeg)
                snapshot.frame_path, snapshot.explanation_path = str(frame_path), str(explanation_path)
            except OSError as exc:
                log.error("cannot write snapshot files to %s: %s", cfg.dir, exc)
        return snapshot, {snapshot.frame_key: frame_jpeg, snapshot.explanation_key: explanation_jpeg}
