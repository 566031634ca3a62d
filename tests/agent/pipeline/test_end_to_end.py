"""End to end, real at every step: encoded clips, real RTSP / RTP servers, real Redis.

The clip (tests/support/face_media.py) shows a real face for 4 s, then the same face
self-blended. A `new` alert must reach the Redis Stream within 2 s (stream time) of that
onset, and a real-only clip must raise none.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from agent.alerts import read_alerts
from agent.alerts.tail import tail_alerts
from agent.app import Agent
from agent.config import load_config

pytestmark = pytest.mark.slow

ONSET_TOLERANCE_S = 0.2  # one analysed frame either side of the onset at 10 fps, plus rounding


def agent_config(redis_url: str, streams: list[dict], **sections):
    return load_config(
        streams=streams,
        alerts={"redis_url": redis_url, **sections.pop("alerts", {})},
        ingest={"reconnect_initial_s": 0.3, "watchdog_s": 3.0, **sections.pop("ingest", {})},
        **sections,
    )


def new_alerts(alerts):
    return [a for a in alerts if a.event == "new"]


def test_manipulated_file_alerts_within_two_seconds_of_onset(manipulated_clip, redis_url, redis_client):
    config = agent_config(redis_url, [{"url": str(manipulated_clip.path), "id": "clip"}])
    with Agent(config) as agent:
        result = agent.run()
    assert result.failed_streams == {}
    alerts = read_alerts(redis_client, config.alerts.stream_key)
    news = new_alerts(alerts)
    assert len(news) == 1, [a.to_json() for a in alerts]
    alert = news[0]
    onset = manipulated_clip.onset
    assert alert.started_at >= onset - ONSET_TOLERANCE_S, "raised on the real part"
    assert alert.last_seen_at - onset <= 2.0, f"alert {alert.last_seen_at - onset:.2f} s after onset"
    assert alert.score >= alert.threshold and alert.verdict == "fake"
    assert alert.box.frame_width == 640 and alert.box.x2 > alert.box.x1
    # The episode ends when the stream does, and the snapshot is fetchable.
    assert alerts[-1].event == "end" and alerts[-1].alert_id == alert.alert_id
    assert redis_client.get(alert.snapshot.frame_key)[:2] == b"\xff\xd8"
    assert redis_client.get(alert.snapshot.explanation_key)[:2] == b"\xff\xd8"


def test_real_only_file_raises_no_alert(real_clip, redis_url, redis_client):
    config = agent_config(redis_url, [{"url": str(real_clip.path), "id": "real"}])
    with Agent(config) as agent:
        result = agent.run()
    assert result.stats.faces_scored >= 60  # 8 s at 10 fps: the face was judged, not skipped
    assert read_alerts(redis_client, config.alerts.stream_key) == []


def run_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "agent.cli", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for_new_alert(client, stream_key: str, timeout: float, group: str = "test"):
    deadline = time.monotonic() + timeout
    for _id, alert in tail_alerts(client, stream_key, group, "c", from_start=True, block_ms=250,
                                  stop=lambda: time.monotonic() > deadline):
        if alert.event == "new":
            return alert
    return None


def stop_cli(process: subprocess.Popen) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    try:
        _out, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        _out, err = process.communicate()
    return process.returncode, err


def test_verity_run_on_rtsp_publishes_an_alert_a_consumer_reads(
    rtsp_server, manipulated_clip, redis_url, redis_client
):
    server = rtsp_server(manipulated_clip.path, path="/cam1", fps=manipulated_clip.fps)
    process = run_cli("run", "--source", server.url, "--redis-url", redis_url)
    try:
        alert = wait_for_new_alert(redis_client, "verity:alerts", timeout=60)
    finally:
        code, err = stop_cli(process)
    assert alert is not None, err[-3000:]
    assert alert.stream_id == "127.0.0.1-cam1" and alert.source == server.url
    # Stream time starts with the RTSP session; the clip starts with it too.
    assert alert.started_at >= manipulated_clip.onset - 0.5
    assert alert.last_seen_at - manipulated_clip.onset <= 2.5
    assert code == 0, err[-3000:]
    ends = [a for a in read_alerts(redis_client, "verity:alerts") if a.event == "end"]
    assert ends and ends[-1].end_reason in ("shutdown", "stream_ended", "track_lost")


def test_verity_run_on_sdp_file_publishes_an_alert(rtp_sender, manipulated_clip, redis_url, redis_client):
    sender = rtp_sender(manipulated_clip.path, codec="libx264", gop=manipulated_clip.fps)
    process = run_cli("run", "--source", str(sender.sdp_path), "--redis-url", redis_url)
    try:
        # ffmpeg loops the clip in real time; the agent joins wherever it is.
        alert = wait_for_new_alert(redis_client, "verity:alerts", timeout=60)
    finally:
        code, err = stop_cli(process)
    assert alert is not None, err[-3000:]
    assert alert.stream_id == sender.sdp_path.stem and alert.verdict == "fake"
    assert code == 0, err[-3000:]


def test_rtsp_server_restart_mid_stream_agent_reconnects_and_keeps_scoring(
    rtsp_server, manipulated_clip, redis_url, redis_client
):
    server = rtsp_server(manipulated_clip.path, path="/cam", fps=manipulated_clip.fps)
    config = agent_config(redis_url, [{"url": server.url, "id": "cam"}])
    stop = threading.Event()
    with Agent(config) as agent:
        runner = threading.Thread(target=agent.run, args=(stop,))
        runner.start()
        try:
            slot = agent.pipeline.slots[0]
            deadline = time.monotonic() + 30
            while slot.frames_analysed < 10 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert slot.frames_analysed >= 10, "no frames before the restart"
            server.kill()  # the camera/server dies mid-stream (still in the real part)
            before = slot.frames_analysed
            time.sleep(1.0)
            server.start()
            alert = wait_for_new_alert(redis_client, config.alerts.stream_key, timeout=60)
            reconnects = slot.reader.stats.reconnects
            after = slot.frames_analysed
        finally:
            stop.set()
            runner.join(30)
    assert reconnects >= 1
    assert after > before + 20, "scoring did not resume after the reconnect"
    # The restarted server plays the clip from the start: the alert belongs to the new segment.
    assert alert is not None and alert.track_id > 1


def test_health_and_metrics_endpoints(manipulated_clip, redis_url):
    config = agent_config(
        redis_url,
        [{"url": str(manipulated_clip.path), "id": "clip", "realtime": True}],
        service={"http_port": 0},
    )
    stop = threading.Event()
    with Agent(config) as agent:
        runner = threading.Thread(target=agent.run, args=(stop,))
        runner.start()
        try:
            time.sleep(2.0)
            base = f"http://127.0.0.1:{agent.http.port}"
            health = json.loads(urllib.request.urlopen(base + "/healthz", timeout=5).read())
            metrics = urllib.request.urlopen(base + "/metrics", timeout=5).read().decode()
        finally:
            stop.set()
            runner.join(30)
    assert health["ok"] is True and health["streams"]["clip"]["state"] == "running"
    assert health["redis"]["connected"] in (True, False)
    assert 'verity_frames_analysed_total{stream="clip"}' in metrics
    value = float(next(l for l in metrics.splitlines() if l.startswith("verity_frames_analysed_total")).split()[-1])
    assert value > 0
