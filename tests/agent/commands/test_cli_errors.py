"""The command line: clear errors and non-zero exits for bad input."""

import subprocess
import sys
import time

import pytest


def verity(*args, env=None, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )


def test_bad_config_value_names_the_key_and_exits_2(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("ingest:\n  analysis_fps: -3\n")
    result = verity("run", "--source", "clip.mp4", "--config", str(config))
    assert result.returncode == 2
    assert "ingest.analysis_fps" in result.stderr and "-3" in result.stderr


def test_unknown_config_key_is_rejected(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("alerts:\n  redis_uri: redis://x\n")
    result = verity("config", "show", "--config", str(config))
    assert result.returncode == 2 and "alerts.redis_uri" in result.stderr


def test_bad_environment_value_is_reported(tmp_path):
    import os

    env = {**os.environ, "VERITY_SCORING__MIN_DURATION_S": "soon"}
    result = verity("config", "show", env=env)
    assert result.returncode == 2 and "scoring.min_duration_s" in result.stderr


def test_no_sources_is_an_error():
    result = verity("run", "--redis-url", "embedded")
    assert result.returncode == 2 and "no sources" in result.stderr


def test_unreachable_rtsp_url_fails_with_the_cause(tmp_path):
    from tests.support.redis_server import free_port

    port = free_port()  # nothing listens there
    config = tmp_path / "c.yaml"
    config.write_text(
        "ingest:\n  connect_attempts: 2\n  reconnect_initial_s: 0.2\n  open_timeout_s: 2\n"
    )
    started = time.monotonic()
    result = verity(
        "run", "--source", f"rtsp://user:secret@127.0.0.1:{port}/live", "--redis-url", "embedded",
        "--config", str(config),
    )
    assert result.returncode == 1
    assert time.monotonic() - started < 60
    assert f"127.0.0.1:{port}" in result.stderr
    assert "refused" in result.stderr.lower()
    assert "secret" not in result.stderr  # credentials never reach the log


def test_missing_file_source_fails_fast():
    result = verity("run", "--source", "/nonexistent/clip.mp4", "--redis-url", "embedded")
    assert result.returncode == 1
    assert "/nonexistent/clip.mp4" in result.stderr


def test_unknown_model_pack_is_a_clear_error():
    result = verity("run", "--source", "x.mp4", "--redis-url", "embedded",
                    env={**__import__("os").environ, "VERITY_MODELS__SPATIAL": "no-such-pack"})
    assert result.returncode == 2 and "no-such-pack" in result.stderr
    assert "models.spatial" in result.stderr  # which setting named it


def test_unknown_temporal_pack_names_its_setting():
    result = verity("run", "--source", "x.mp4", "--redis-url", "embedded",
                    env={**__import__("os").environ, "VERITY_MODELS__TEMPORAL": "temporal-sbx"})
    assert result.returncode == 2
    assert "models.temporal" in result.stderr and "temporal-sbx" in result.stderr


@pytest.mark.parametrize("args", [["score", "/nonexistent.jpg"], ["alerts", "tail", "--redis-url", "redis://127.0.0.1:1/0", "--timeout", "1"]])
def test_other_commands_fail_cleanly(args):
    result = verity(*args)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip()
