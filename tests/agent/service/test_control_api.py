"""The control API against a running agent: token, add / list / remove streams, readiness."""

from __future__ import annotations

import threading
import time

import pytest

from agent.alerts import read_alerts
from tests.agent.service.conftest import start_agent, stop_agent

pytestmark = pytest.mark.slow


def wait_for(predicate, timeout: float = 20.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")


def test_probes_are_open_and_everything_else_needs_the_token(running_agent):
    client = running_agent.client
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.call("GET", path, token=None).status == 200, path
    health = client.call("GET", "/healthz", token=None).json()
    assert health["redis"]["connected"] is True
    ready = client.call("GET", "/readyz", token=None).json()
    assert ready == {"ready": True, "models_loaded": True, "redis": ready["redis"]}
    for token in (None, "wrong"):
        reply = client.call("GET", "/api/streams", token=token)
        assert reply.status == 401 and "Bearer" in reply.headers.get("WWW-Authenticate", "")
        assert client.call("POST", "/api/streams", {"url": "x.mp4"}, token=token).status == 401
    assert client.call("GET", "/api/streams").json() == {"streams": []}


def test_readiness_fails_while_redis_is_down(redis_factory, manipulated_clip):
    server = redis_factory()
    running = start_agent(server.url)
    try:
        assert running.client.call("GET", "/readyz").status == 200
        server.stop()
        reply = running.client.call("GET", "/readyz", token=None)
        assert reply.status == 503 and reply.json()["redis"]["connected"] is False
        health = running.client.call("GET", "/healthz", token=None).json()
        assert health["redis"]["connected"] is False and "unreachable" in health["redis"]["last_error"]
    finally:
        stop_agent(running)


def test_add_watch_and_remove_a_stream_with_labels(running_agent, manipulated_clip, redis_client):
    client = running_agent.client
    reply = client.call("POST", "/api/streams", {
        "url": str(manipulated_clip.path), "id": "desk-1", "realtime": True,
        "room": "standup", "participant": "alice",
    })
    assert reply.status == 201, reply.body
    assert reply.headers["Location"] == "/api/streams/desk-1"
    assert client.call("POST", "/api/streams", {"url": str(manipulated_clip.path), "id": "desk-1"}).status == 409

    def alerting_track():
        view = client.call("GET", "/api/streams/desk-1").json()
        return view if any(t["alerting"] for t in view["tracks"]) else None

    view = wait_for(alerting_track, timeout=30)
    assert view["state"] == "running" and view["room"] == "standup"
    assert view["frames_analysed"] > 0
    track = next(t for t in view["tracks"] if t["alerting"])
    assert track["score"] >= track["threshold"]

    assert client.call("DELETE", "/api/streams/desk-1").status == 204
    assert client.call("GET", "/api/streams/desk-1").status == 404
    assert client.call("DELETE", "/api/streams/desk-1").status == 404
    key = running_agent.agent.config.alerts.stream_key
    # Removing the stream ends its open episode: the `end` reaches Redis moments later.
    alerts = wait_for(lambda: (got := read_alerts(redis_client, key)) and got[-1].event == "end"
                      and got)
    new = [a for a in alerts if a.event == "new"]
    assert new and new[0].room == "standup" and new[0].participant == "alice"
    # Removing the stream ends its open episode, with the labels still on the `end`.
    assert alerts[-1].event == "end" and alerts[-1].participant == "alice"


def test_bad_stream_descriptions_are_refused_with_the_field_named(running_agent):
    client = running_agent.client
    reply = client.call("POST", "/api/streams", {"url": "rtsp://u:hunter2@cam/1", "id": "bad id!"})
    assert reply.status == 422 and "id" in reply.json()["error"]
    assert "hunter2" not in reply.body.decode()
    reply = client.call("POST", "/api/streams", {"url": "x.mp4", "colour": "red"})
    assert reply.status == 422 and "colour" in reply.json()["error"]
    reply = client.call("POST", "/api/streams", b"not json")
    assert reply.status == 400


def _rss_kb() -> float:
    from agent.resources import rss_mb

    return rss_mb() * 1024


def test_fifty_add_remove_cycles_leak_neither_threads_nor_memory(running_agent, real_clip):
    client = running_agent.client
    stream = {"url": str(real_clip.path), "realtime": True}

    def cycle(i: int) -> None:
        assert client.call("POST", "/api/streams", {**stream, "id": f"cycle-{i}"}).status == 201
        wait_for(lambda: client.call("GET", f"/api/streams/cycle-{i}").json()["frames_analysed"] > 0)
        assert client.call("DELETE", f"/api/streams/cycle-{i}").status == 204

    for i in range(5):  # warm up: models, pools, caches
        cycle(i)
    threads, rss = threading.active_count(), _rss_kb()
    for i in range(5, 55):
        cycle(i)
    assert client.call("GET", "/api/streams").json() == {"streams": []}
    assert threading.active_count() <= threads + 1
    grown = (_rss_kb() - rss) / rss
    assert grown < 0.05, f"RSS grew {grown:.1%} over 50 add/remove cycles"


def test_without_a_token_changes_need_a_loopback_bind(redis_url, manipulated_clip):
    local = start_agent(redis_url, token=None)
    try:
        reply = local.client.call("POST", "/api/streams", {"url": str(manipulated_clip.path), "id": "a"})
        assert reply.status == 201
    finally:
        stop_agent(local)
    exposed = start_agent(redis_url, token=None, host="0.0.0.0")
    try:
        assert exposed.client.call("GET", "/api/streams").status == 200
        reply = exposed.client.call("POST", "/api/streams", {"url": str(manipulated_clip.path)})
        assert reply.status == 403 and "service.token" in reply.json()["error"]
    finally:
        stop_agent(exposed)


def test_a_taken_port_is_reported_by_name(redis_url, running_agent):
    from agent.app import Agent
    from agent.config import load_config
    from agent.service import ServiceError

    config = load_config(alerts={"redis_url": redis_url},
                         service={"http_port": running_agent.agent.http.port})
    with pytest.raises(ServiceError, match="service.http_port: 127.0.0.1:[0-9]+ is already in use"):
        with Agent(config):
            pass




def test_idle_connections_cost_no_thread_and_are_closed(redis_url):
    import socket

    running = start_agent(redis_url, idle_timeout_s=1.0)
    try:
        time.sleep(0.5)
        before = threading.active_count()
        sockets = []
        for _ in range(300):  # connect and say nothing, as a slow or hostile client would
            s = socket.create_connection(("127.0.0.1", running.agent.http.port), timeout=5)
            sockets.append(s)
        time.sleep(0.5)
        assert threading.active_count() <= before + 2
        assert running.client.call("GET", "/healthz", token=None).status == 200
        # Connections left idle are closed by the service after idle_timeout_s (1 s here).
        time.sleep(2.0)
        closed = 0
        for s in sockets:
            s.settimeout(3)
            try:
                closed += s.recv(1) == b""
            except OSError:
                closed += 1
        assert closed == len(sockets)
    finally:
        for s in sockets:
            s.close()
        stop_agent(running)
