"""Shared fixtures: real servers (Redis, RTSP, RTP senders) started on 127.0.0.1, test media."""

pytest_plugins = [
    "tests.support.redis_server",
    "tests.support.stream_servers",
    "tests.support.whep_server",
    "tests.support.media",
    "tests.support.face_media",
    "tests.support.browser",
]
