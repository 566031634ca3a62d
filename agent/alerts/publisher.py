"""Turns track events into alert documents (with evidence) and hands them to the sink."""

from __future__ import annotations

import logging
import os
import socket
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
    """A pipeline listener. `publish` is the sink's (RedisAlertSink.publish)."""

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

    def on_event(self, event: TrackEvent) -> None:
        state = event.state
        rolling = state.rolling
        score = float(rolling.value if rolling.value is not None else 0.0)
        width, height = state.frame_size
        x1, y1, x2, y2 = (float(v) for v in state.box)
        blobs: dict[str, bytes] = {}
        snapshot = None
        if event.transition is Transition.NEW and self.config.snapshot.enabled and event.observation:
            snapshot, blobs = self._evidence(event, score)
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
            snapshot=snapshot,
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
        self.publish(alert, blobs)

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
