"""Credentials never leave the process: not in `verity config show`, not in logs."""

from __future__ import annotations

import os
import subprocess
import sys

SECRETS = ("hunter2", "qpass", "r3dispw", "t0k3n", "wh3p")


def verity(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_config_show_prints_no_password_token_or_secret_option(tmp_path):
    config = tmp_path / "agent.yaml"
    config.write_text(
        "streams:\n"
        "  - url: rtsp://admin:hunter2@cam.local/1?user=admin&password=qpass\n"
        "    options: {auth_password: hunter2}\n"
        "  - url: whep+https://sfu.example/whep/room/alice\n"
        "    bearer_token: wh3p\n"
    )
    result = verity("config", "show", "--config", str(config), env={
        "VERITY_ALERTS__REDIS_URL": "redis://:r3dispw@redis:6379/0",
        "VERITY_SERVICE__TOKEN": "t0k3n",
    })
    assert result.returncode == 0, result.stderr
    for secret in SECRETS:
        assert secret not in result.stdout, secret
    assert "rtsp://***@cam.local/1?user=admin&password=***" in result.stdout


def test_a_failing_source_is_logged_without_its_credentials():
    result = verity("run", "--source", "rtsp://admin:hunter2@127.0.0.1:9/x?password=qpass",
                    "--redis-url", "redis://:r3dispw@127.0.0.1:9/0",
                    env={"VERITY_INGEST__CONNECT_ATTEMPTS": "1",
                         "VERITY_INGEST__OPEN_TIMEOUT_S": "1",
                         "VERITY_ALERTS__SHUTDOWN_TIMEOUT_S": "0"})
    assert result.returncode != 0
    assert "127.0.0.1:9" in result.stderr  # it did report the source
    for secret in SECRETS:
        assert secret not in result.stderr + result.stdout, secret
