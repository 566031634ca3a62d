"""Nothing lost, nothing hidden: Redis refusing us, Redis down, the agent killed mid-outage."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest
import redis

from agent.alerts import Alert, RedisAlertSink, RedisRefused, Snapshot, read_alerts
from agent.alerts.embedded import EmbeddedRedis
from agent.config import AlertsConfig
from tests.agent.alerts.test_sink import make_alert
from tests.support.redis_server import free_port


def verity(*args, timeout=120, **kwargs):
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True,
                          text=True, timeout=timeout, **kwargs)


def with_snapshot(alert: Alert) -> tuple[Alert, dict[str, bytes]]:
    key = f"verity:alerts:snapshot:{alert.alert_id}:frame"
    alert = alert.model_copy(update={"snapshot": Snapshot(frame_key=key)})
    return alert, {key: b"\xff\xd8 a jpeg " + alert.alert_id.encode()}


def test_a_wrong_password_is_refused_at_start_not_buffered(redis_factory):
    port = free_port()
    server = EmbeddedRedis(port=port, password="right-pw").start()
    try:
        sink = RedisAlertSink(AlertsConfig(redis_url=f"redis://:wrong-pw@127.0.0.1:{port}/0"))
        with pytest.raises(RedisRefused, match="authentication failed") as caught:
            sink.check()
        assert "wrong-pw" not in str(caught.value)
        started = time.monotonic()
        result = verity("run", "--source", "whatever.mp4", "--redis-url",
                        f"redis://:wrong-pw@127.0.0.1:{port}/0")
        assert result.returncode == 2, result.stderr
        assert "authentication failed" in result.stderr and "wrong-pw" not in result.stderr
        assert time.monotonic() - started < 60
    finally:
        server.stop()


def test_outage_spools_to_disk_with_snapshots_then_replays_in_order(redis_factory, tmp_path):
    server = redis_factory()
    port = server.port
    spool = tmp_path / "spool" / "alerts.jsonl"
    config = AlertsConfig(redis_url=server.url, spool_path=spool)
    sink = RedisAlertSink(config).start()
    sink.publish(*with_snapshot(make_alert(0, alert_id="before")))
    assert sink.flush(5)
    server.stop()
    sink.publish(*with_snapshot(make_alert(0, alert_id="during")))
    for i in range(1, 4):
        sink.publish(make_alert(i, event="update", alert_id="during"))
    deadline = time.monotonic() + 10
    while sink.stats.spool_pending < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sink.stats.spool_pending == 4 and sink.stats.buffered == 0
    assert stat.S_IMODE(spool.stat().st_mode) == 0o600
    lines = [json.loads(line) for line in spool.read_text().splitlines()]
    assert [(d["alert_id"], d["sequence"]) for d in lines] == [("during", i) for i in range(4)]

    restarted = redis_factory(port)
    assert sink.flush(20), "spooled alerts were not sent when Redis came back"
    sink.close()
    client = redis.Redis.from_url(restarted.url)
    stored = read_alerts(client, config.stream_key)
    assert [(a.alert_id, a.sequence) for a in stored] == [("during", i) for i in range(4)]
    assert client.get("verity:alerts:snapshot:during:frame") == b"\xff\xd8 a jpeg during"
    assert not spool.exists(), "the spool must be emptied once everything is in Redis"


def test_killed_during_an_outage_loses_no_alert(manipulated_clip, clip_30fps, tmp_path):
    port = free_port()  # nothing listens there yet: Redis is down from the start
    url = f"redis://127.0.0.1:{port}/0"
    spool = tmp_path / "alerts.jsonl"
    env = {**os.environ, "VERITY_ALERTS__SPOOL_PATH": str(spool)}
    agent = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "run", "--source", str(manipulated_clip.path),
         "--redis-url", url],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and agent.poll() is None:
            if spool.exists() and '"event":"new"' in spool.read_text():
                break
            time.sleep(0.2)
        assert spool.exists() and '"event":"new"' in spool.read_text(), "no alert was spooled"
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
    finally:
        if agent.poll() is None:
            agent.kill()
    spooled = [Alert.from_json(line) for line in spool.read_text().splitlines()]
    new = next(a for a in spooled if a.event == "new")

    server = EmbeddedRedis(port=port).start()
    try:
        # The next start sends what the killed one kept, before anything of its own.
        result = verity("run", "--source", str(clip_30fps), "--redis-url", url, env=env)
        assert result.returncode == 0, result.stderr
        client = redis.Redis.from_url(server.url)
        stored = read_alerts(client, "verity:alerts")
        assert [(a.alert_id, a.sequence) for a in stored[:len(spooled)]] == \
            [(a.alert_id, a.sequence) for a in spooled]
        assert client.get(new.snapshot.frame_key)[:2] == b"\xff\xd8"
        assert not spool.exists()
    finally:
        server.stop()


def test_unsent_alerts_make_run_fail_and_shutdown_is_bounded(manipulated_clip):
    url = f"redis://127.0.0.1:{free_port()}/0"  # never up
    started = time.monotonic()
    result = verity("run", "--source", str(manipulated_clip.path), "--redis-url", url,
                    env={**os.environ, "VERITY_ALERTS__SHUTDOWN_TIMEOUT_S": "1"})
    took = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert "never reached Redis" in result.stderr and "written to the log" in result.stderr
    assert took < 60, f"{took:.0f} s"


def test_the_least_privilege_acl_user_of_the_readme_is_enough(redis_factory):
    server = redis_factory()
    admin = redis.Redis.from_url(server.url)
    # The README's ACL line, verbatim in spirit: alert keys and channel only, these commands.
    admin.execute_command(
        "ACL", "SETUSER", "verity", "on", ">agent-pw", "resetkeys", "~verity:alerts*",
        "resetchannels", "&verity:alerts:live", "-@all",
        "+ping", "+xadd", "+publish", "+set", "+get", "+multi", "+exec",
    )
    url = f"redis://verity:agent-pw@127.0.0.1:{server.port}/0"
    sink = RedisAlertSink(AlertsConfig(redis_url=url)).start()
    sink.check()
    alert, blobs = with_snapshot(make_alert(0, alert_id="acl"))
    sink.publish(alert, blobs)
    assert sink.flush(5) and sink.stats.published == 1
    assert sink.fetch(alert.snapshot.frame_key) == blobs[alert.snapshot.frame_key]
    assert sink.ping() is None
    sink.close()
    assert [a.alert_id for a in read_alerts(admin, "verity:alerts")] == ["acl"]


@pytest.fixture
def tls_redis(tmp_path):
    """redis-server speaking TLS only, with a certificate from a private CA."""
    import shutil

    from agent.alerts.embedded import redis_server_binary

    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed (deploy/install-system-packages.sh installs it)")

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.crt", "-days", "2", "-subj", "/CN=verity-test-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=127.0.0.1")
    (tmp_path / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext")
    port = free_port()
    server = subprocess.Popen(
        [redis_server_binary(), "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", "server.crt", "--tls-key-file", "server.key",
         "--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no", "--save", ""],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"rediss://127.0.0.1:{port}/0"
    ca = tmp_path / "ca.crt"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(f"{url}?ssl_ca_certs={ca}").ping()
            break
        except redis.RedisError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.skip("this redis-server was built without TLS")
            time.sleep(0.05)
    yield url, ca
    server.terminate()
    server.wait(5)


def test_tls_with_the_right_ca_delivers_and_a_failed_certificate_check_stops_the_start(tls_redis):
    url, ca = tls_redis
    sink = RedisAlertSink(AlertsConfig(redis_url=f"{url}?ssl_ca_certs={ca}&ssl_cert_reqs=required"))
    sink.check()
    sink.start()
    sink.publish(make_alert(0, alert_id="tls"))
    assert sink.flush(5) and sink.stats.published == 1
    sink.close()

    untrusted = f"{url}?ssl_cert_reqs=required"  # the system CAs do not know ours
    with pytest.raises(RedisRefused, match="TLS certificate check failed"):
        RedisAlertSink(AlertsConfig(redis_url=untrusted)).check()
    result = verity("run", "--source", "whatever.mp4", "--redis-url", untrusted)
    assert result.returncode == 2 and "TLS certificate check failed" in result.stderr
