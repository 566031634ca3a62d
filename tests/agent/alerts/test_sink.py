"""The Redis sink against a real redis-server: Stream + Pub/Sub, consumer groups, outages."""

import threading
import time
from datetime import datetime, timezone

import redis

from agent.alerts import Alert, FaceBox, RedisAlertSink, read_alerts
from agent.alerts.tail import tail_alerts
from agent.config import AlertsConfig


def make_alert(sequence=0, event="new", alert_id="a1") -> Alert:
    return Alert(
        event=event, alert_id=alert_id, sequence=sequence, stream_id="cam", source="rtsp://***@cam/x",
        track_id=3, verdict="fake", score=0.9, peak_score=0.95, threshold=0.6,
        model_scores={"spatial": 0.93}, models={"spatial": "spatial-sbi@1.0.0"},
        started_at=1.5, last_seen_at=2.0, frames_judged=12, frames_unknown=1,
        box=FaceBox(x1=10, y1=20, x2=110, y2=140, frame_width=640, frame_height=480),
        emitted_at=datetime.now(timezone.utc), agent="test:1",
    )


def test_alert_goes_to_stream_and_channel_with_snapshot(redis_url, redis_client):
    config = AlertsConfig(redis_url=redis_url)
    pubsub = redis_client.pubsub()
    pubsub.subscribe(config.channel)
    pubsub.get_message(timeout=1)  # subscription confirmation
    sink = RedisAlertSink(config).start()
    sink.publish(make_alert(), {"verity:alerts:snapshot:a1:frame": b"\xff\xd8jpeg"})
    assert sink.flush(5)
    sink.close()
    stored = read_alerts(redis_client, config.stream_key)
    assert [a.alert_id for a in stored] == ["a1"] and stored[0].score == 0.9
    message = pubsub.get_message(timeout=2)
    assert Alert.from_json(message["data"]).alert_id == "a1"
    assert redis_client.get("verity:alerts:snapshot:a1:frame") == b"\xff\xd8jpeg"
    assert 0 < redis_client.ttl("verity:alerts:snapshot:a1:frame") <= config.snapshot.ttl_s


def test_stream_is_bounded_by_maxlen(redis_url, redis_client):
    config = AlertsConfig(redis_url=redis_url, stream_maxlen=100)
    sink = RedisAlertSink(config).start()
    for i in range(400):
        sink.publish(make_alert(sequence=i))
    assert sink.flush(10)
    sink.close()
    assert 100 <= redis_client.xlen(config.stream_key) < 400


def test_redis_outage_buffers_and_delivers_in_order_when_it_returns(redis_factory):
    server = redis_factory()
    port = server.port
    config = AlertsConfig(redis_url=server.url)
    sink = RedisAlertSink(config).start()
    sink.publish(make_alert(0))
    assert sink.flush(5)
    server.stop()  # Redis gone
    for i in range(1, 6):
        sink.publish(make_alert(i, event="update"))
    time.sleep(1.0)
    assert sink.stats.buffered == 5 and sink.stats.connected is False
    restarted = redis_factory(port)  # back (empty: persistence is off in tests)
    assert sink.flush(20), "buffered alerts were not delivered after Redis came back"
    sink.close()
    client = redis.Redis.from_url(restarted.url)
    assert [a.sequence for a in read_alerts(client, config.stream_key)] == [1, 2, 3, 4, 5]


def test_unsent_alerts_are_spooled_at_shutdown(tmp_path):
    spool = tmp_path / "unsent.jsonl"
    config = AlertsConfig(redis_url="redis://127.0.0.1:1/0", spool_path=spool)  # nothing listens
    sink = RedisAlertSink(config).start()
    sink.publish(make_alert(0))
    sink.publish(make_alert(1, event="update"))
    sink.close(timeout=1.0)
    lines = spool.read_text().splitlines()
    assert [Alert.from_json(line).sequence for line in lines] == [0, 1]


def test_tail_resumes_with_consumer_group(redis_url, redis_client):
    config = AlertsConfig(redis_url=redis_url)
    sink = RedisAlertSink(config).start()
    for i in range(3):
        sink.publish(make_alert(i))
    assert sink.flush(5)
    got = []
    stop = threading.Event()
    for _id, alert in tail_alerts(redis_client, config.stream_key, "g", "c1", from_start=True,
                                  block_ms=200, stop=stop.is_set):
        got.append(alert.sequence)
        if len(got) == 2:
            break
    # The third is read by the next session of the same group: nothing twice, nothing lost.
    sink.publish(make_alert(3))
    assert sink.flush(5)
    sink.close()
    rest = []
    deadline = time.monotonic() + 5
    for _id, alert in tail_alerts(redis_client, config.stream_key, "g", "c1", block_ms=200,
                                  stop=lambda: time.monotonic() > deadline):
        rest.append(alert.sequence)
        if len(rest) == 2:
            break
    assert got == [0, 1] and rest == [2, 3]
