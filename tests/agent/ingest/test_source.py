"""Opening sources: options per kind, readable errors, safe URLs, and the quick probe."""

from __future__ import annotations

import pytest

from agent.config.ingest import IngestConfig, StreamConfig
from agent.ingest import probe_source, redact_url
from agent.ingest.source import container_args
from tests.support.stream_servers import free_tcp_port


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://admin:hunter2@10.0.0.5:554/live", "rtsp://***@10.0.0.5:554/live"),
        ("rtsps://token@cam.example/x?a=1", "rtsps://***@cam.example/x?a=1"),
        ("rtsp://10.0.0.5/live", "rtsp://10.0.0.5/live"),
        ("/videos/a@b.mp4", "/videos/a@b.mp4"),
    ],
)
def test_redact_url_hides_credentials(url, shown):
    assert redact_url(url) == shown


def test_rtsp_options_default_to_tcp_and_user_options_win():
    ingest = IngestConfig(open_timeout_s=4, watchdog_s=7)
    target, kwargs = container_args(StreamConfig(url="rtsp://cam/x"), ingest)
    assert target == "rtsp://cam/x"
    assert kwargs["container_options"]["rtsp_transport"] == "tcp"
    assert kwargs["timeout"] == (4, 7)  # the read timeout is the watchdog

    stream = StreamConfig(
        url="rtsp://cam/x", rtsp_transport="udp", options={"buffer_size": "1048576"}
    )
    _, kwargs = container_args(stream, ingest)
    assert kwargs["container_options"]["rtsp_transport"] == "udp"
    assert kwargs["container_options"]["buffer_size"] == "1048576"

    stream = StreamConfig(url="rtsp://cam/x", options={"rtsp_transport": "udp_multicast"})
    assert (
        container_args(stream, ingest)[1]["container_options"]["rtsp_transport"] == "udp_multicast"
    )


def test_sdp_and_device_sources_name_their_format():
    _, kwargs = container_args(StreamConfig(url="/run/sfu/peer1.sdp"), IngestConfig())
    assert kwargs["format"] == "sdp"
    assert set(kwargs["container_options"]["protocol_whitelist"].split(",")) >= {
        "file",
        "udp",
        "rtp",
    }

    target, kwargs = container_args(StreamConfig(url="/dev/video0"), IngestConfig())
    assert (target, kwargs["format"]) == ("/dev/video0", "v4l2")


def test_probe_describes_a_good_file(clip_30fps):
    ok, message = probe_source(StreamConfig(url=str(clip_30fps)))
    assert ok and message == "320x240 h264 at 30 fps"


def test_probe_names_the_cause_of_a_bad_source(tmp_path):
    ok, message = probe_source(StreamConfig(url=str(tmp_path / "gone.mp4")))
    assert not ok and message.endswith("gone.mp4: no such file")

    port = free_tcp_port()
    ok, message = probe_source(StreamConfig(url=f"rtsp://u:pw@127.0.0.1:{port}/x"))
    assert not ok and message == f"rtsp://***@127.0.0.1:{port}/x: connection refused"
