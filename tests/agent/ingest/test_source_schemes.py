"""Sources read only what their kind allows: no file fetched over HTTP, no widened whitelist."""

from __future__ import annotations

import shutil

import pytest
from pydantic import ValidationError

from agent.config.ingest import StreamConfig
from tests.agent.ingest.helpers import collect


@pytest.mark.parametrize("url", ["http://example.com/clip.mp4", "https://h/x.mp4",
                                 "ftp://h/x.mp4", "rtmp://h/live", "tcp://127.0.0.1:9/x"])
def test_network_urls_that_are_not_sources_are_refused(url):
    with pytest.raises(ValidationError, match=r"is not a file source Verity reads"):
        StreamConfig(url=url)


@pytest.mark.parametrize("kind, url, whitelist", [
    ("rtsp", "rtsp://cam/1", "rtsp,tcp,http,file"),
    ("file", "clip.mp4", "file,http,https,tcp"),
    ("sdp", "p.sdp", "file,udp,rtp,tcp,http"),
])
def test_options_may_not_widen_the_protocol_whitelist(kind, url, whitelist):
    with pytest.raises(ValidationError, match="protocol_whitelist"):
        StreamConfig(url=url, kind=kind, options={"protocol_whitelist": whitelist})


def test_options_may_narrow_it():
    stream = StreamConfig(url="rtsp://cam/1", options={"protocol_whitelist": "rtsp,tcp"})
    assert stream.options["protocol_whitelist"] == "rtsp,tcp"


@pytest.mark.parametrize("name", ["clip:1.mp4", "file:x.mp4", "concat:a.mp4"])
def test_a_local_file_whose_name_looks_like_a_protocol_is_read_as_a_file(
    name, clip_30fps, tmp_path, start_reader, monkeypatch
):
    shutil.copy(clip_30fps, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    stream = StreamConfig(url=name, kind="file")
    reader = start_reader(stream)
    frames = collect(reader, timeout_s=20)
    assert len(frames) > 10 and reader.stats.state == "ended", reader.stats
