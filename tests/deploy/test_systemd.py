"""deploy/systemd/verity.service: the command, user, restart policy, paths and hardening;
`systemd-analyze verify` where the machine has it."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from agent.cli import build_parser
from agent.config import load_config
from tests.deploy.common import CONFIG_EXAMPLE, DEPLOY, RUN_ARGV, read_unit, split_command

UNIT_PATH = DEPLOY / "systemd" / "verity.service"
UNIT = read_unit(UNIT_PATH)
SERVICE = UNIT["Service"]


def _env() -> dict[str, str]:
    values = {}
    for line in UNIT_PATH.read_text().splitlines():
        if line.startswith("Environment="):
            key, _, value = line[len("Environment=") :].partition("=")
            values[key] = value
    return values


def test_runs_verity_run_with_the_config():
    argv = split_command(SERVICE["ExecStart"])
    assert argv[0].endswith("/bin/verity") and argv[0].startswith("/")
    assert argv[1:] == RUN_ARGV
    build_parser().parse_args(argv[1:])


def test_dedicated_user_and_restart_policy():
    assert SERVICE["User"] == "verity" and SERVICE["Group"] == "verity"
    assert SERVICE["Restart"] == "on-failure"
    assert (
        SERVICE["RestartSec"].rstrip("s").isdigit() and int(SERVICE["RestartSec"].rstrip("s")) > 0
    )
    assert UNIT["Unit"]["StartLimitIntervalSec"] == "0"  # keep trying after repeated failures
    assert UNIT["Install"]["WantedBy"] == "multi-user.target"


def test_environment_file_for_verity_variables():
    assert SERVICE["EnvironmentFile"] == "-/etc/verity/verity.env"  # optional
    example = (DEPLOY / "systemd" / "verity.env.example").read_text()
    keys = [line.split("=", 1)[0].lstrip("# ") for line in example.splitlines() if "=" in line]
    assert keys and all(key.startswith("VERITY_") for key in keys)


def test_engine_cache_and_state_match_the_config():
    config = load_config(CONFIG_EXAMPLE)
    cache = _env()["VERITY_MODELS__ENGINE_CACHE_DIR"]
    assert cache == config.models.engine_cache_dir == "/var/cache/verity/engines"
    assert "verity/engines" in SERVICE["CacheDirectory"].split()
    assert SERVICE["StateDirectory"] == "verity"
    assert str(config.alerts.spool_path).startswith("/var/lib/verity/")


def test_hardening():
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "RestrictSUIDSGID": "yes",
        "CapabilityBoundingSet": "",
    }
    for key, value in expected.items():
        assert SERVICE[key] == value, key
    # GPUs and cameras are device nodes: the unit must not hide them.
    assert "PrivateDevices" not in SERVICE


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verify(tmp_path):
    # The real binary is not installed on a test machine; verify everything else.
    unit = tmp_path / "verity.service"
    unit.write_text(
        UNIT_PATH.read_text().replace(split_command(SERVICE["ExecStart"])[0], shutil.which("true"))
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "verity.service" not in result.stderr, result.stderr
