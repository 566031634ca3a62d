"""Many agents, one stream list: each stream watched by exactly one replica."""

from __future__ import annotations

import collections
import subprocess
import sys

import pytest
import yaml
from pydantic import ValidationError

from agent.alerts import read_alerts
from agent.cluster import my_streams, owner
from agent.config import StreamConfig, load_config
from agent.config.cluster import ClusterConfig

IDS = [f"cam-{i:04d}" for i in range(900)]


def test_every_stream_has_exactly_one_replica_and_the_share_is_even():
    streams = [StreamConfig(url=f"rtsp://h/{i}", id=i) for i in IDS]
    shares = [my_streams(streams, ordinal, 3) for ordinal in range(3)]
    assert sorted(s.id for share in shares for s in share) == sorted(IDS)
    assert all(250 <= len(share) <= 350 for share in shares), [len(s) for s in shares]


def test_a_resize_moves_only_the_streams_the_new_replica_takes():
    before = {i: owner(i, 3) for i in IDS}
    after = {i: owner(i, 4) for i in IDS}
    moved = [i for i in IDS if before[i] != after[i]]
    assert all(after[i] == 3 for i in moved)  # nothing shuffles between the old replicas
    assert 0.15 <= len(moved) / len(IDS) <= 0.35  # about a quarter
    assert all(owner(i, 3) == before[i] for i in IDS)  # stable: same answer every time


def test_an_ordinal_outside_the_replicas_is_refused():
    with pytest.raises(ValidationError, match="ordinal 3 is not below replicas 3"):
        ClusterConfig(replicas=3, ordinal=3)


@pytest.mark.slow
def test_three_agents_on_one_redis_share_nine_streams_and_alert_once_each(
    manipulated_clip, redis_url, redis_client, tmp_path
):
    streams = [{"url": str(manipulated_clip.path), "id": f"room-{i}"} for i in range(9)]
    agents = []
    for ordinal in range(3):
        config = tmp_path / f"agent-{ordinal}.yaml"
        config.write_text(yaml.safe_dump({
            "streams": streams,
            "alerts": {"redis_url": redis_url},
            "cluster": {"replicas": 3, "ordinal": ordinal},
        }))
        agents.append(subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        ))
    try:
        for process in agents:
            _, err = process.communicate(timeout=600)
            assert process.returncode == 0, err
    finally:
        for process in agents:
            if process.poll() is None:
                process.kill()
    alerts = read_alerts(redis_client, load_config().alerts.stream_key, count=10_000)
    news = collections.defaultdict(list)
    for alert in alerts:
        if alert.event == "new":
            news[alert.stream_id].append(alert)
    assert sorted(news) == sorted(s["id"] for s in streams), "every stream watched and alerting"
    for stream_id, episode in news.items():
        assert len(episode) == 1, f"{stream_id}: {len(episode)} new alerts (watched twice?)"
    watchers = {a.stream_id: a.agent for a in alerts}
    assert len(set(watchers.values())) == 3, "the streams were not shared among the three agents"
    for stream_id, agent in watchers.items():
        assert all(a.agent == agent for a in alerts if a.stream_id == stream_id)
