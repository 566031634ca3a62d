"""Operator conveniences: JSON logs, clean messages instead of tracebacks, `--help` everywhere."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from tests.agent.commands.cli_runner import NATIVE_NOISE, blocked_imports, verity
from tests.support.media import write_test_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_test_clip(tmp_path_factory.mktemp("json-logs") / "clip.mp4", seconds=1.0,
                           fps=10, width=160, height=120)


def _json_lines(stderr: str) -> list[dict]:
    lines = stderr.splitlines()
    assert lines, "nothing on stderr"
    records = [json.loads(line) for line in lines]  # every line parses, or this raises
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys(), record
    return records


def test_log_format_json_every_stderr_line_is_one_json_object(clip, tmp_path):
    missing = tmp_path / "missing.mp4"
    result = verity("--log-format", "json", "score", "--log-level", "INFO", clip, missing)
    assert result.returncode == 2
    records = _json_lines(result.stderr)
    assert any(r["level"] == "INFO" and r["logger"].startswith("agent") for r in records)
    errors = [r["message"] for r in records if r["level"] == "ERROR"]
    assert f"verity score: {missing}: no such file" in errors
    for marker in NATIVE_NOISE:
        assert marker not in result.stderr
    assert "UNKNOWN" in result.stdout  # the report itself stays on stdout, as text


def test_log_format_after_the_command_and_from_environment_and_config(tmp_path):
    after = verity("config", "show", "--log-format", "json",
                   env={"VERITY_INGST__QUEUE_SIZE": "3"})
    (warning,) = _json_lines(after.stderr)
    assert warning["level"] == "WARNING" and "VERITY_INGEST__QUEUE_SIZE" in warning["message"]

    from_env = verity("config", "show", env={"VERITY_LOG_FORMAT": "json", "VERITY_FOOBAR": "1"})
    assert _json_lines(from_env.stderr)[0]["level"] == "WARNING"
    assert "log_format: json" in from_env.stdout

    config = tmp_path / "c.yaml"
    config.write_text("log_format: json\n")
    from_file = verity("score", "--config", config, tmp_path / "missing.mp4")
    (error,) = _json_lines(from_file.stderr)
    assert error["level"] == "ERROR" and "no such file" in error["message"]
    # The command line wins over the file.
    text = verity("score", "--config", config, "--log-format", "text", tmp_path / "missing.mp4")
    assert text.stderr.startswith("verity score: ") and "{" not in text.stderr


def test_default_log_format_stays_plain_text(tmp_path):
    result = verity("score", tmp_path / "missing.mp4")
    assert result.stderr == f"verity score: {tmp_path / 'missing.mp4'}: no such file\n"


def test_json_records_carry_the_exception_text():
    from agent.logs import JsonFormatter

    logger = logging.getLogger("verity.test")
    try:
        raise RuntimeError("decoder fell over")
    except RuntimeError:
        record = logger.makeRecord("verity.test", logging.ERROR, __file__, 1,
                                   "stream %s: %s", ("door", "multi\nline"), sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "stream door: multi\nline"
    assert entry["level"] == "ERROR" and entry["logger"] == "verity.test"
    assert "RuntimeError: decoder fell over" in entry["exception"]
    assert "Traceback" in entry["exception"]


# -- missing optional packages: one line, not a traceback ---------------------------------

def test_train_without_torch_says_which_extra_to_install(tmp_path):
    blocker = blocked_imports(tmp_path / "no-torch", "torch")
    result = verity("train", "spatial", "--data", tmp_path, "--work", tmp_path / "work",
                    path_first=blocker)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "torch" in result.stderr and "`train` extra" in result.stderr


def test_train_help_works_with_and_without_a_model():
    result = verity("train", "--help")
    assert result.returncode == 0, result.stderr
    assert "MODEL" in result.stdout and "spatial" in result.stdout
    result = verity("train")
    assert result.returncode == 2 and "which model" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_fp16_without_onnxconverter_common(tmp_path):
    blocker = blocked_imports(tmp_path / "no-converter", "onnxconverter_common")
    result = verity("engines", "check-fp16", "--samples", "2", path_first=blocker)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "onnxconverter-common" in result.stderr and "`train` extra" in result.stderr
