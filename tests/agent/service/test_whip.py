"""WHIP ingest with a real WebRTC peer (aiortc as the publisher, as an SFU or OBS would be)."""

from __future__ import annotations

import asyncio
import time

import pytest

from agent.alerts import read_alerts
from tests.agent.service.conftest import TOKEN, start_agent, stop_agent
from tests.support.whip_publisher import Publisher

pytestmark = pytest.mark.slow


async def wait_until(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError("condition not met in time")


@pytest.mark.parametrize("codec", ["VP8", "H264"])
def test_pushed_face_that_turns_fake_raises_an_alert_and_hang_up_ends_the_stream(
    codec, redis_url, redis_client, manipulated_clip
):
    running = start_agent(redis_url)
    client, key = running.client, running.agent.config.alerts.stream_key

    def new_alerts():
        return [a for a in read_alerts(redis_client, key) if a.event == "new"]

    async def scenario():
        publisher = Publisher(running.base, "call-7", manipulated_clip.path, codec,
                              query="?room=board&participant=bob", token=TOKEN)
        status, answer = await publisher.start()
        assert status == 201, answer
        assert f"{codec}/90000" in answer
        view = await wait_until(lambda: client.call("GET", "/api/streams/call-7").json(), 10)
        assert view["kind"] == "whip" and view["room"] == "board" and view["participant"] == "bob"
        second = Publisher(running.base, "call-7", manipulated_clip.path, token=TOKEN)
        assert (await second.start())[0] == 409
        news = await wait_until(new_alerts, 20)
        assert await publisher.hang_up() == 200
        await wait_until(lambda: client.call("GET", "/api/streams/call-7").status == 404, 10)
        return news

    try:
        news = asyncio.run(scenario())
        assert news[0].stream_id == "call-7" and news[0].room == "board" and news[0].participant == "bob"
        assert news[0].started_at >= manipulated_clip.onset - 0.5, "alert raised on the real part"
        ends = [a for a in read_alerts(redis_client, key) if a.event == "end"]
        assert ends and ends[-1].end_reason == "stream_ended"
        assert running.thread.is_alive(), "the agent must keep running after the call ends"
    finally:
        stop_agent(running)


def test_a_configured_participant_waits_and_takes_the_next_publisher(redis_url, real_clip):
    running = start_agent(redis_url, streams=[{"url": "whip:desk", "participant": "carol"}])
    client = running.client

    def state():
        return client.call("GET", "/healthz", token=None).json()["streams"]["desk"]["state"]

    async def scenario():
        await wait_until(lambda: state() == "waiting", 10)
        assert client.call("GET", "/healthz", token=None).status == 200
        for _ in range(2):  # a participant leaves, the next joins the same stream
            publisher = Publisher(running.base, "desk", real_clip.path, token=TOKEN)
            assert (await publisher.start())[0] == 201
            await wait_until(lambda: state() == "running", 10)
            await wait_until(
                lambda: client.call("GET", "/api/streams/desk").json()["frames_analysed"] > 5, 10)
            assert await publisher.hang_up() == 200
            await wait_until(lambda: state() == "waiting", 10)

    try:
        asyncio.run(scenario())
    finally:
        stop_agent(running)


def test_whip_refuses_what_it_cannot_take(running_agent):
    client = running_agent.client
    assert client.call("POST", "/whip/x", b"v=0", content_type="text/plain").status == 415
    reply = client.call("POST", "/whip/x", b"v=0\r\n", content_type="application/sdp")
    assert reply.status == 400 and "m=video" in reply.json()["error"]
    assert client.call("POST", "/whip/x", b"v=0", token=None, content_type="application/sdp").status == 401
    assert client.call("DELETE", "/whip/x/nosuchsession").status == 404
    # Not a WHIP stream: the id belongs to a file source.
    assert client.call("GET", "/api/streams/x").status == 404
