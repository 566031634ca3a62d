"""What a running agent reports: health, readiness, metrics, and each stream's live view.

Plain functions of the `Agent`, called by the HTTP routes (off the event loop where they
may block on Redis).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent.redaction import redact_url

if TYPE_CHECKING:
    from agent.app import Agent
    from agent.pipeline.runner import StreamSlot


def redis_state(agent: Agent) -> dict[str, Any]:
    """The Redis link as the sink sees it now (pings Redis: may block up to its timeout)."""
    sink = agent.sink
    if sink is None:
        return {"connected": False, "buffered_alerts": 0, "last_error": "not started"}
    problem = sink.ping()
    stats = sink.stats
    return {
        "connected": problem is None,
        "buffered_alerts": stats.buffered,
        "last_error": problem or stats.last_error,
    }


def health(agent: Agent) -> tuple[bool, dict]:
    """Healthy while at least one stream has not failed (or, with `service.keep_running`,
    while the agent runs at all); the Redis link is reported, not required: alerts wait in
    the buffer while it is down."""
    pipeline = agent.pipeline
    streams = {}
    if pipeline is not None:
        for slot in pipeline.slots:
            stats = slot.reader.stats
            streams[slot.config.id] = {
                "state": stats.state,
                "last_error": stats.last_error,
                "frames_analysed": slot.frames_analysed,
                "dropped": stats.dropped,
                "reconnects": stats.reconnects,
            }
    alive = any(s["state"] != "failed" for s in streams.values())
    ok = pipeline is not None and (alive or (agent.config.service.keep_running and not streams))
    return ok, {"ok": ok, "streams": streams, "redis": redis_state(agent)}


def readiness(agent: Agent) -> tuple[bool, dict]:
    """Ready when the models are loaded and Redis answers."""
    models_loaded = agent.pipeline is not None
    redis = redis_state(agent)
    ready = models_loaded and redis["connected"]
    return ready, {"ready": ready, "models_loaded": models_loaded, "redis": redis}


def stream_view(slot: StreamSlot) -> dict[str, Any]:
    """One stream for the API and dashboard: labels, state, counters, live tracks."""
    config, stats = slot.config, slot.reader.stats
    return {
        "id": config.id,
        "kind": config.kind,
        "url": redact_url(config.url),
        "room": config.room,
        "participant": config.participant,
        "state": "ended" if slot.done and stats.state not in ("failed", "stopped") else stats.state,
        "last_error": stats.last_error,
        "width": stats.width,
        "height": stats.height,
        "frames_decoded": stats.decoded,
        "frames_analysed": slot.frames_analysed,
        "dropped": stats.dropped,
        "reconnects": stats.reconnects,
        "tracks": track_views(slot),
    }


def track_views(slot: StreamSlot) -> list[dict[str, Any]]:
    """The stream's open face tracks with their rolling scores. Read from another thread than
    the one updating them: a track may be a round old, never torn."""
    for _attempt in range(5):
        try:
            states = list(slot.book.states.values())
            break
        except RuntimeError:  # the dict changed while copied: the loop added or ended a track
            continue
    else:
        states = []
    views = []
    for state in states:
        rolling = state.rolling
        views.append({
            "track_id": state.track_id,
            "score": None if rolling.value is None else round(float(rolling.value), 4),
            "peak": round(float(state.max_rolling), 4),
            "threshold": rolling.threshold,
            "verdict": rolling.verdict.value,
            "alerting": state.alert_id is not None,
            "alert_id": state.alert_id,
            "first_seen": round(state.first_seen, 3),
            "last_seen": round(state.last_seen, 3),
            "box": [round(float(v), 1) for v in state.box],
            "model_scores": {k: round(float(v), 4) for k, v in state.model_scores.items()},
        })
    return views


def metrics_text(agent: Agent) -> str:
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[dict, float]]) -> None:
        lines.append(f"# HELP verity_{name} {help_text}")
        lines.append(f"# TYPE verity_{name} {kind}")
        for labels, value in samples:
            label_text = ",".join(f'{k}="{v}"' for k, v in labels.items())
            lines.append(f"verity_{name}{{{label_text}}} {value}" if label_text else f"verity_{name} {value}")

    pipeline = agent.pipeline
    slots = pipeline.slots if pipeline else []
    per_stream = [(slot, slot.reader.stats) for slot in slots]
    metric("frames_decoded_total", "counter", "Frames decoded.", [({"stream": s.config.id}, st.decoded) for s, st in per_stream])
    metric("frames_analysed_total", "counter", "Frames analysed.", [({"stream": s.config.id}, s.frames_analysed) for s, _ in per_stream])
    metric("frames_dropped_total", "counter", "Frames dropped because analysis fell behind.", [({"stream": s.config.id}, st.dropped) for s, st in per_stream])
    metric("reconnects_total", "counter", "Source reconnections.", [({"stream": s.config.id}, st.reconnects) for s, st in per_stream])
    metric("faces_observed_total", "counter", "Face observations.", [({"stream": s.config.id}, s.faces_observed) for s, _ in per_stream])
    metric("analysis_lag_seconds_max", "gauge", "Largest decode-to-analysis delay.", [({"stream": s.config.id}, round(s.lag_max, 4)) for s, _ in per_stream])
    if pipeline is not None:
        st = pipeline.stats
        metric("faces_scored_total", "counter", "Faces scored by the models.", [({}, st.faces_scored)])
        metric("faces_unknown_total", "counter", "Faces judged unknown (quality gate or out of distribution).", [({}, st.faces_unknown)])
        metric("inference_seconds_total", "counter", "Time spent in model inference.", [({}, round(pipeline.scorer.inference_seconds, 4))])
        metric("temporal_windows_total", "counter", "Track windows judged by the temporal model.", [({}, pipeline.scorer.windows_scored)])
        metric("deep_looks_total", "counter", "Deep-model looks at face tracks.", [({}, pipeline.scorer.deep_looks)])
        metric("deep_looks_deferred_total", "counter", "Deep looks that fell due but waited for the CPU budget.", [({}, pipeline.scorer.deep_deferred)])
    if agent.sink is not None:
        sink = agent.sink.stats
        metric("alerts_published_total", "counter", "Alert events written to Redis.", [({}, sink.published)])
        metric("alerts_buffered", "gauge", "Alert events waiting for Redis.", [({}, sink.buffered)])
        metric("alerts_spooled_total", "counter", "Alert events written to the spool or log.", [({}, sink.spooled)])
        metric("redis_connected", "gauge", "1 when the last Redis write succeeded.", [({}, int(sink.connected))])
    return "\n".join(lines) + "\n"
