"""WHEP: pulling a participant from an SFU over WebRTC (a real aiortc server on 127.0.0.1)."""

from __future__ import annotations

import pytest

from agent.config.ingest import StreamConfig
from tests.agent.ingest.helpers import collect, wait_for


def test_waits_for_the_participant_then_reads_and_hangs_up_on_stop(whep_server, clip_30fps, start_reader):
    server = whep_server()
    stream = StreamConfig(url=server.url("alice"))
    assert stream.kind == "whep"
    reader = start_reader(stream, analysis_fps=10, connect_attempts=1)
    assert wait_for(lambda: reader.stats.state == "waiting", 10), reader.stats
    assert not wait_for(lambda: reader.stats.state == "failed", 1.5), reader.stats

    server.publish("alice", clip_30fps)  # the participant joins the room
    frames = collect(reader, timeout_s=20, until=lambda fs: len(fs) >= 5)
    assert len(frames) >= 5, reader.stats
    assert frames[0].image.shape == (240, 320, 3)
    assert reader.stats.state == "running"
    reader.stop()
    assert wait_for(lambda: not server.sessions, 5), "the agent did not DELETE its WHEP session"
    assert ("DELETE", "alice") in server.requests


@pytest.mark.parametrize("token, works", [("right", True), ("wrong", False)])
def test_bearer_token_is_sent_and_a_refusal_is_named(whep_server, clip_30fps, start_reader, token, works):
    server = whep_server(token="right")
    server.publish("bob", clip_30fps)
    stream = StreamConfig(url=server.url("bob"), bearer_token=token)
    reader = start_reader(stream, analysis_fps=10, connect_attempts=2)
    if works:
        assert len(collect(reader, timeout_s=20, until=lambda fs: len(fs) >= 3)) >= 3
    else:
        assert wait_for(lambda: reader.failed, 15), reader.stats
        assert "401" in reader.error and "bearer_token" in reader.error
        assert "wrong" not in reader.error
