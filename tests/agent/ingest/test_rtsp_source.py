"""RTSP sources against a real GStreamer RTSP server on 127.0.0.1."""

from __future__ import annotations

import itertools
import logging
import time

import numpy as np
import pytest

from agent.config.ingest import StreamConfig
from tests.agent.ingest.helpers import collect, wait_for
from tests.support.stream_servers import free_tcp_port


@pytest.fixture(scope="module")
def rtsp_clip(make_clip):
    """20 s of 15 fps H.264: longer than any test here watches it."""
    return make_clip(seconds=20.0, fps=15.0, gop=15)


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_rtsp_delivers_frames_with_sane_timestamps(rtsp_server, rtsp_clip, start_reader, transport):
    server = rtsp_server(rtsp_clip, path="/cam1")
    stream = StreamConfig(url=server.url, rtsp_transport=transport)
    # A queue deep enough for the burst FFmpeg releases after probing (~2 s of frames).
    reader = start_reader(stream, analysis_fps=5, queue_size=32)
    frames = collect(reader, timeout_s=20, until=lambda fs: len(fs) >= 10)

    assert len(frames) >= 10, reader.stats
    times = np.array([f.time for f in frames])
    pts = np.array([f.pts for f in frames[1:]], dtype=float)  # RTSP may omit the first pts
    assert times[0] == pytest.approx(0.0, abs=0.2)
    assert np.all(np.diff(times) > 0) and np.all(np.diff(pts) > 0)
    # 15 fps capped at 5 fps: every 3rd frame, 0.2 s of stream time apart.
    assert np.median(np.diff(times)) == pytest.approx(0.2, abs=0.02)
    assert np.allclose(np.diff(times)[1:], np.diff(pts), atol=1e-3)  # time follows the pts
    if transport == "tcp":  # lossless: exact
        assert np.allclose(np.diff(times), 0.2, atol=0.02)
        assert [f.index for f in frames] == list(range(0, 3 * len(frames), 3))
    assert frames[-1].image.shape == (240, 320, 3)
    stats = reader.stats
    assert stats.state == "running" and stats.fps == pytest.approx(15.0)
    assert (stats.width, stats.height) == (320, 240) and stats.reconnects == 0


def test_rtsp_reconnects_after_the_server_restarts(rtsp_server, rtsp_clip, start_reader):
    server = rtsp_server(rtsp_clip, path="/cam2")
    reader = start_reader(server.url, analysis_fps=5, watchdog_s=2.0, open_timeout_s=2.0)
    before = collect(reader, timeout_s=20, until=lambda fs: len(fs) >= 5)
    assert len(before) >= 5, reader.stats

    server.kill()
    killed_at = time.monotonic()
    assert wait_for(lambda: reader.stats.state == "reconnecting", 10), reader.stats
    time.sleep(1.0)  # stay down for a moment: the reader retries against a closed port
    server.start()
    outage = time.monotonic() - killed_at

    after = collect(reader, timeout_s=25, until=lambda fs: sum(f.segment > 0 for f in fs) >= 5)
    resumed = [f for f in after if f.segment > 0]
    assert len(resumed) >= 5, reader.stats
    stats = reader.stats
    assert stats.reconnects >= 1 and stats.state == "running" and not reader.failed
    assert resumed[0].segment == stats.segment >= 1
    times = [f.time for f in before + after]
    assert all(b > a for a, b in itertools.pairwise(times)), "stream time went backwards"
    # The new segment continues after the old one by at least the time the server was gone.
    assert resumed[0].time - before[-1].time >= outage * 0.8
    indexes = [f.index for f in before + after]
    assert indexes == sorted(indexes)


def test_gives_up_after_reconnect_attempts_once_the_server_is_gone(rtsp_server, start_reader):
    server = rtsp_server(None, path="/cam6")  # a live test pattern: a camera, not a file
    reader = start_reader(server.url, analysis_fps=5, reconnect_attempts=2)
    assert len(collect(reader, timeout_s=20, until=lambda fs: len(fs) >= 2)) >= 2
    server.kill()
    assert wait_for(lambda: reader.failed, 15), reader.stats
    assert "connection refused (gave up after 2 reconnect attempts)" in reader.error
    assert reader.stats.reconnects == 2
    collect(reader, timeout_s=5)  # frames queued before the failure can still be read
    assert reader.finished


def test_hung_server_trips_the_watchdog_then_recovers(rtsp_server, rtsp_clip, start_reader):
    server = rtsp_server(rtsp_clip, path="/cam3")
    reader = start_reader(server.url, analysis_fps=5, watchdog_s=1.5, open_timeout_s=1.5)
    assert len(collect(reader, timeout_s=20, until=lambda fs: len(fs) >= 3)) >= 3

    server.freeze()  # the TCP connection stays up, nothing arrives
    try:
        assert wait_for(lambda: reader.stats.state == "reconnecting", 10), reader.stats
        assert "watchdog" in (reader.stats.last_error or "")
    finally:
        server.thaw()
    resumed = collect(reader, timeout_s=25, until=lambda fs: any(f.segment > 0 for f in fs))
    assert any(f.segment > 0 for f in resumed), reader.stats
    assert reader.stats.reconnects >= 1


def test_stop_is_prompt_while_a_read_is_blocked(rtsp_server, rtsp_clip, start_reader):
    server = rtsp_server(rtsp_clip, path="/cam4")
    # Long timeouts: only the stop flag can end the blocked read quickly.
    reader = start_reader(server.url, watchdog_s=60.0, open_timeout_s=60.0)
    assert len(collect(reader, timeout_s=20, until=lambda fs: len(fs) >= 2)) >= 2
    server.freeze()
    try:
        time.sleep(1.0)  # the decode thread is now waiting on the socket
        started = time.monotonic()
        reader.stop(timeout=5.0)
        assert time.monotonic() - started < 2.0
        assert not reader.alive and reader.finished and reader.stats.state == "stopped"
    finally:
        server.thaw()


def test_stop_is_prompt_while_opening_a_hung_server(start_reader, silent_server):
    reader = start_reader(f"rtsp://127.0.0.1:{silent_server}/x", open_timeout_s=60.0)
    time.sleep(0.5)
    assert reader.stats.state == "connecting"
    started = time.monotonic()
    reader.stop(timeout=5.0)
    assert time.monotonic() - started < 2.0
    assert not reader.alive and reader.finished


def test_unreachable_url_fails_fast_naming_the_cause(start_reader, caplog):
    caplog.set_level(logging.INFO, logger="agent.ingest")
    port = free_tcp_port()  # nothing listens there
    url = f"rtsp://viewer:s3cret@127.0.0.1:{port}/x"
    started = time.monotonic()
    reader = start_reader(StreamConfig(url=url, id="door"), connect_attempts=2)
    assert wait_for(lambda: reader.finished, 10)
    assert time.monotonic() - started < 10
    assert reader.failed and reader.stats.state == "failed"
    assert "connection refused" in reader.error and "gave up after 2 attempts" in reader.error
    assert reader.stats.reconnects == 1

    messages = [r.getMessage() for r in caplog.records if r.name == "agent.ingest"]
    retry = [m for m in messages if "retrying in" in m]
    assert len(retry) == 1
    assert "door" in retry[0] and "connection refused" in retry[0] and "0.2 s" in retry[0]
    assert f"rtsp://***@127.0.0.1:{port}/x" in retry[0]
    assert all("s3cret" not in m for m in messages) and "s3cret" not in reader.error


def test_hung_server_is_reported_as_a_timeout(start_reader, silent_server):
    reader = start_reader(
        f"rtsp://127.0.0.1:{silent_server}/x", open_timeout_s=1.0, connect_attempts=1
    )
    assert wait_for(lambda: reader.finished, 10)
    assert reader.failed and "timed out after 1 s" in reader.error


def test_wrong_path_is_reported_as_not_found(rtsp_server, rtsp_clip, start_reader):
    server = rtsp_server(rtsp_clip, path="/cam5")
    reader = start_reader(server.url.replace("/cam5", "/nope"), connect_attempts=1)
    assert wait_for(lambda: reader.finished, 10)
    assert reader.failed and "not found" in reader.error


def test_a_frozen_stream_is_declared_stalled_one_watchdog_after_its_last_frame(
    rtsp_server, rtsp_clip, start_reader
):
    server = rtsp_server(rtsp_clip, path="/cam5")
    reader = start_reader(server.url, analysis_fps=5, watchdog_s=2.0, open_timeout_s=2.0)
    assert len(collect(reader, timeout_s=20, until=lambda fs: len(fs) >= 3)) >= 3
    server.freeze()
    try:
        # Frames already sent keep arriving for a moment after the freeze: time the stall from
        # the last one decoded, which is what the watchdog promises.
        decoded, last_change = reader.stats.decoded, time.monotonic()
        while reader.stats.state == "running" and time.monotonic() - last_change < 10:
            if reader.stats.decoded != decoded:
                decoded, last_change = reader.stats.decoded, time.monotonic()
            time.sleep(0.02)
        stalled_after = time.monotonic() - last_change
        assert reader.stats.state == "reconnecting", reader.stats
        assert stalled_after < 2.0 + 0.75, f"stall seen {stalled_after:.2f} s after the last frame"
    finally:
        server.thaw()
