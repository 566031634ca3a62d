"""Configuration mistakes a user makes: clear messages, warnings for misspelt variables, and no
password echoed back."""

from __future__ import annotations

import re

from tests.agent.commands.cli_runner import ROOT, verity


def test_streams_env_that_is_not_json_names_the_variable():
    result = verity("config", "show", env={"VERITY_STREAMS": "notjson"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "SettingsError" not in result.stderr
    assert "VERITY_STREAMS" in result.stderr and "not valid JSON" in result.stderr


def test_a_section_env_that_is_not_json_shows_the_one_key_form():
    result = verity("config", "show", env={"VERITY_INGEST": "{queue_size: 3"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "VERITY_INGEST" in result.stderr and "VERITY_INGEST__" in result.stderr


def test_misspelt_environment_variables_are_warned_about_with_the_nearest_name():
    result = verity("config", "show", env={
        "VERITY_INGST__QUEUE_SIZE": "8", "VERITY_FOOBAR": "1", "VERITY_LOG_LEVL": "DEBUG",
        "VERITY_DATA_DIR": "/data",  # not a setting, but a variable Verity reads: no warning
    })
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert any("VERITY_INGST__QUEUE_SIZE" in line and "did you mean VERITY_INGEST__QUEUE_SIZE"
               in line for line in lines), result.stderr
    assert any("VERITY_LOG_LEVL" in line and "VERITY_LOG_LEVEL" in line for line in lines)
    assert any("VERITY_FOOBAR" in line and "not a Verity setting" in line for line in lines)
    assert "VERITY_DATA_DIR" not in result.stderr
    assert len(lines) == 3  # once each, though the config is read more than once


def test_misspelt_key_inside_a_real_section_is_an_error_naming_the_variable():
    result = verity("config", "show", env={"VERITY_INGEST__QUEUE_SIZ": "8"})
    assert result.returncode == 2
    assert "ingest.queue_siz" in result.stderr
    assert "VERITY_INGEST__QUEUE_SIZ;" in result.stderr
    assert "did you mean VERITY_INGEST__QUEUE_SIZE?" in result.stderr


def test_misspelt_file_key_suggests_the_nearest(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("faces:\n  detect_evrey: 2\n")
    result = verity("config", "show", "--config", path)
    assert result.returncode == 2 and "did you mean 'detect_every'?" in result.stderr


def test_every_variable_the_code_reads_is_known():
    """A VERITY_ variable read with os.environ must not be warned about as a misspelling."""
    from agent.config import unknown_env_vars

    names = set()
    for folder, pattern in (("agent", "*.py"), ("engines", "*.py"), ("deploy", "*")):
        for path in (ROOT / folder).rglob(pattern):
            if path.is_file():
                text = path.read_text(errors="replace")
                names |= set(re.findall(r"\bVERITY_[A-Z0-9_]*[A-Z0-9]\b", text))
    assert "VERITY_DATA_DIR" in names and "VERITY_ALERTS__REDIS_URL" in names
    assert unknown_env_vars({name: "x" for name in names}) == []


def test_zero_analysis_fps_on_the_command_line_is_refused():
    result = verity("run", "--source", "clip.mp4", "--redis-url", "embedded",
                    "--analysis-fps", "0")
    assert result.returncode == 2
    assert "--analysis-fps" in result.stderr and "greater than 0" in result.stderr


def test_duplicate_stream_ids_hint_and_no_password(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("streams:\n  - url: rtsp://admin:Hunter2@cam.local/live\n    id: door\n"
                    "  - url: rtsp://admin:Hunter2@cam.local/side\n    id: door\n")
    result = verity("config", "show", "--config", path)
    assert result.returncode == 2
    assert "[env VERITY_]" not in result.stderr
    assert "streams.1" in result.stderr and "'door'" in result.stderr
    assert "unique `id`" in result.stderr
    assert "Hunter2" not in result.stderr


def test_validation_errors_do_not_echo_passwords(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("streams: rtsp://admin:Hunter2@cam.local/live\n")
    result = verity("config", "show", "--config", path)
    assert result.returncode == 2 and "streams" in result.stderr
    assert "Hunter2" not in result.stderr
    assert "rtsp://***@cam.local/live" in result.stderr

    bad_json = '[{"url": "rtsp://admin:Hunter2@cam.local/live" "id": "door"}]'
    result = verity("config", "show", env={"VERITY_STREAMS": bad_json})
    assert result.returncode == 2 and "VERITY_STREAMS" in result.stderr
    assert "Hunter2" not in result.stderr


def test_unknown_env_vars_function():
    from agent.config import unknown_env_vars

    found = dict(unknown_env_vars({
        "VERITY_ALERTS__REDIS_URL": "redis://x", "VERITY_FACES__DETECTOR__MIN_CONFIDENCE": "0.5",
        "VERITY_STREAMS": "[]", "VERITY_LOG_FORMAT": "json", "VERITY_GRAPH_CACHE": "/tmp",
        "VERITY_ALERTZ__REDIS_URL": "redis://x", "PATH": "/bin",
    }))
    assert found == {"VERITY_ALERTZ__REDIS_URL": "VERITY_ALERTS__REDIS_URL"}

