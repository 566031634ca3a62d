"""POST /api/score: an uploaded file judged like `verity score`, with limits and content checks."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid

import cv2
import pytest

from tests.agent.service.conftest import start_agent, stop_agent
from agent.demo.clip import astronaut_bgr

pytestmark = pytest.mark.slow


def multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + \
        f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def upload(client, name: str, data: bytes, query: str = "?evidence=1"):
    body, content_type = multipart(name, data)
    return client.call("POST", "/api/score" + query, body, content_type=content_type)


def test_a_photo_is_judged_like_verity_score_with_its_heat_map(running_agent, tmp_path):
    ok, jpeg = cv2.imencode(".jpg", astronaut_bgr(640, 480))
    path = tmp_path / "portrait.jpg"
    path.write_bytes(jpeg.tobytes())
    reply = upload(running_agent.client, "portrait.jpg", jpeg.tobytes())
    assert reply.status == 200, reply.body
    report = reply.json()
    cli = subprocess.run([sys.executable, "-m", "agent.cli", "score", "--json", str(path)],
                         capture_output=True, text=True, timeout=300)
    expected = json.loads(cli.stdout.splitlines()[-1])
    assert report["kind"] == "image" and report["path"] == "portrait.jpg"
    assert report["verdict"] == expected["verdict"]
    assert [t["verdict"] for t in report["tracks"]] == [t["verdict"] for t in expected["tracks"]]
    assert report["tracks"][0]["mean_probability"] == pytest.approx(
        expected["tracks"][0]["mean_probability"], abs=1e-4)
    heat = base64.b64decode(report["explanations"]["1"])
    assert heat[:2] == b"\xff\xd8"


def test_uploads_are_checked_before_anything_is_decoded(redis_url, tmp_path):
    running = start_agent(redis_url, max_upload_mb=0.05)  # 50 kB
    try:
        client = running.client
        reply = upload(client, "notes.txt", b"hello, not a video")
        assert reply.status == 415 and "notes.txt" in reply.json()["error"]
        reply = upload(client, "big.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100_000)
        assert reply.status == 413 and "max_upload_mb" in reply.json()["error"]
        reply = upload(client, "moov-only.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
        assert reply.status == 422 and "moov-only.mp4" in reply.json()["error"]
        assert str(tmp_path) not in reply.body.decode()
        reply = upload(client, "x.jpg", b"\xff\xd8\xff", query="")
        assert reply.status in (200, 422)
        body, content_type = multipart("portrait.jpg", b"")
        assert client.call("POST", "/api/score", body, token=None, content_type=content_type).status == 401
    finally:
        stop_agent(running)


def test_a_burst_of_uploads_beyond_two_is_told_to_retry(running_agent, manipulated_clip):
    from concurrent.futures import ThreadPoolExecutor

    data = manipulated_clip.path.read_bytes()
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda i: upload(running_agent.client, f"c{i}.mp4", data, ""),
                                range(6)))
    statuses = sorted(r.status for r in replies)
    assert statuses.count(200) >= 2 and set(statuses) <= {200, 429}, statuses
    busy = next(r for r in replies if r.status == 429)
    assert busy.headers.get("Retry-After") == "5"
