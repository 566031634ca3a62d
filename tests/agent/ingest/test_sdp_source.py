"""RTP described by an SDP file (mediasoup PlainTransport / Janus forwarders), sent by ffmpeg."""

from __future__ import annotations

import numpy as np
import pytest

from agent.config.ingest import StreamConfig
from tests.agent.ingest.helpers import collect, wait_for


@pytest.mark.parametrize("codec", ["libx264", "libvpx"])
def test_rtp_from_sdp_delivers_frames(rtp_sender, clip_30fps, start_reader, codec):
    sender = rtp_sender(clip_30fps, codec=codec)
    stream = StreamConfig(url=str(sender.sdp_path))
    assert stream.kind == "sdp"
    reader = start_reader(stream, analysis_fps=10)
    frames = collect(reader, timeout_s=20, until=lambda fs: len(fs) >= 10)

    assert len(frames) >= 10, (reader.stats, sender.log_path.read_text())
    times = np.array([f.time for f in frames])
    assert np.all(np.diff(times) > 0)
    # 30 fps capped at 10: 0.1 s apart (RTP timestamps; a lost packet may cost a frame).
    assert np.median(np.diff(times)) == pytest.approx(0.1, abs=0.02)
    assert frames[0].image.shape == (240, 320, 3)
    assert reader.stats.state == "running"


def test_rtp_sender_gone_then_back_reconnects(rtp_sender, clip_30fps, start_reader):
    sender = rtp_sender(clip_30fps)
    reader = start_reader(str(sender.sdp_path), analysis_fps=10, watchdog_s=1.0)
    assert len(collect(reader, timeout_s=20, until=lambda fs: len(fs) >= 3)) >= 3

    sender.stop()
    assert wait_for(lambda: reader.stats.state in ("reconnecting", "failed"), 10), reader.stats
    assert "no data" in (reader.stats.last_error or "")
    sender.start()  # the forwarder comes back on the same port
    resumed = collect(reader, timeout_s=25, until=lambda fs: any(f.segment > 0 for f in fs))
    assert any(f.segment > 0 for f in resumed), reader.stats
    assert reader.stats.reconnects >= 1 and not reader.failed


def test_a_participant_who_has_not_joined_is_waited_for_not_failed(rtp_sender, clip_30fps, start_reader):
    sender = rtp_sender(clip_30fps)
    sender.stop()  # the SDP is written; nobody sends yet (the participant has not joined)
    reader = start_reader(str(sender.sdp_path), analysis_fps=10, open_timeout_s=0.5,
                          connect_attempts=2)
    assert wait_for(lambda: reader.stats.state == "waiting", 10), reader.stats
    assert not wait_for(lambda: reader.stats.state == "failed", 3.0), reader.stats
    assert reader.stats.state == "waiting"

    sender.start()  # the participant joins
    frames = collect(reader, timeout_s=20, until=lambda fs: len(fs) >= 3)
    assert len(frames) >= 3 and reader.stats.state == "running"
