"""HTTP endpoint of a running agent: /healthz (JSON) and /metrics (Prometheus text format)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from agent.config import ServiceConfig

if TYPE_CHECKING:
    from agent.app import Agent


def health(agent: Agent) -> tuple[bool, dict]:
    """Healthy while the sink works and at least one stream has not failed."""
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
    sink = agent.sink.stats if agent.sink else None
    ok = bool(streams) and any(s["state"] != "failed" for s in streams.values())
    return ok, {
        "ok": ok,
        "streams": streams,
        "redis": {
            "connected": sink.connected if sink else False,
            "buffered_alerts": sink.buffered if sink else 0,
            "last_error": sink.last_error if sink else None,
        },
    }


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
    if agent.sink is not None:
        sink = agent.sink.stats
        metric("alerts_published_total", "counter", "Alert events written to Redis.", [({}, sink.published)])
        metric("alerts_buffered", "gauge", "Alert events waiting for Redis.", [({}, sink.buffered)])
        metric("alerts_spooled_total", "counter", "Alert events written to the spool or log.", [({}, sink.spooled)])
        metric("redis_connected", "gauge", "1 when the last Redis write succeeded.", [({}, int(sink.connected))])
    return "\n".join(lines) + "\n"


class HttpService:
    def __init__(self, agent: Agent, config: ServiceConfig) -> None:
        self.agent = agent
        agent_ref = agent

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.startswith("/healthz"):
                    ok, body = health(agent_ref)
                    self._reply(200 if ok else 503, "application/json", json.dumps(body))
                elif self.path.startswith("/metrics"):
                    self._reply(200, "text/plain; version=0.0.4", metrics_text(agent_ref))
                else:
                    self._reply(404, "text/plain", "not found: try /healthz or /metrics\n")

            def _reply(self, code: int, content_type: str, body: str) -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:  # keep probes out of the log
                pass

        self.server = ThreadingHTTPServer((config.http_host, config.http_port or 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="verity-http", daemon=True)

    def start(self) -> HttpService:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
