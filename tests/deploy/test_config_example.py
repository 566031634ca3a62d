"""deploy/config.example.yaml validates with the agent's own loader and fits the deploy files."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from agent.config import ConfigError, load_config
from tests.deploy.common import CONFIG_EXAMPLE, DEPLOY, load_yaml


def test_example_validates():
    config = load_config(CONFIG_EXAMPLE)
    assert len(config.streams) == 1
    stream = config.streams[0]
    assert stream.kind == "rtsp" and stream.id == "lobby"
    assert config.service.http_port == 8080
    # Health checks come from outside the container's loopback (kubelet, compose, docker).
    assert config.service.http_host == "0.0.0.0"
    assert config.models.engine_cache_dir == "/var/cache/verity/engines"
    assert str(config.alerts.spool_path).startswith("/var/lib/verity/")


def test_redis_url_points_at_the_compose_service():
    config = load_config(CONFIG_EXAMPLE)
    compose = load_yaml(DEPLOY / "compose.yaml")
    url = urlsplit(config.alerts.redis_url)
    assert url.scheme == "redis" and url.hostname in compose["services"]
    assert "redis" in compose["services"][url.hostname]["image"]


def test_environment_overrides_used_by_the_deploy_files(monkeypatch):
    """compose.gpu.yaml, the k8s Secret and the systemd env file rely on VERITY_ variables
    overriding single keys while the rest of the file still applies."""
    monkeypatch.setenv("VERITY_MODELS__RUNTIME", "tensorrt")
    monkeypatch.setenv("VERITY_ALERTS__REDIS_URL", "redis://:secret@10.0.0.5:6379/1")
    config = load_config(CONFIG_EXAMPLE)
    assert config.models.runtime == "tensorrt"
    assert config.models.max_batch == 32  # the file's other models keys stay
    assert config.alerts.redis_url == "redis://:secret@10.0.0.5:6379/1"
    assert config.alerts.spool_path is not None
    assert config.service.http_port == 8080


def test_a_broken_copy_fails_naming_the_key(tmp_path):
    broken = tmp_path / "config.yaml"
    broken.write_text(CONFIG_EXAMPLE.read_text().replace("http_port: 8080", "http_prot: 8080"))
    with pytest.raises(ConfigError, match=r"service\.http_prot"):
        load_config(broken)
