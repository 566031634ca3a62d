"""deploy/compose.yaml and compose.gpu.yaml: parse, and point at files and ports that exist."""

from __future__ import annotations

from pathlib import Path

from agent.cli import build_parser
from agent.config import ModelsConfig, load_config
from tests.deploy.common import CONFIG_EXAMPLE, DEPLOY, RUN_ARGV, load_yaml

COMPOSE = load_yaml(DEPLOY / "compose.yaml")
GPU = load_yaml(DEPLOY / "compose.gpu.yaml")


def _build_paths(service: dict) -> tuple[Path, Path]:
    context = (DEPLOY / service["build"]["context"]).resolve()
    return context, context / service["build"]["dockerfile"]


def _pinned(image: str) -> bool:
    name, _, tag = image.rpartition(":")
    return bool(name) and tag not in ("", "latest") and "/" not in tag


def test_services_and_redis_durability():
    services = COMPOSE["services"]
    assert set(services) == {"redis", "verity"}
    redis = services["redis"]
    assert _pinned(redis["image"]) and redis["image"].startswith("redis:7")
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in redis["volumes"])  # the AOF lives in a volume
    assert redis["healthcheck"]["test"][-1] == "ping"
    assert COMPOSE["services"]["verity"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_verity_builds_the_cpu_dockerfile():
    context, dockerfile = _build_paths(COMPOSE["services"]["verity"])
    assert (context / "pyproject.toml").is_file()
    assert dockerfile.is_file() and dockerfile.name == "Dockerfile.cpu"


def test_config_mount_and_command_agree():
    verity = COMPOSE["services"]["verity"]
    mounts = {}
    for volume in verity["volumes"]:
        source, target = volume.split(":")[:2]
        mounts[target] = source
    config_path = verity["command"][verity["command"].index("--config") + 1]
    assert verity["command"] == RUN_ARGV
    source = (DEPLOY / mounts[config_path]).resolve()
    assert source == CONFIG_EXAMPLE.resolve() and source.is_file()
    build_parser().parse_args(verity["command"])  # the CLI accepts it


def test_published_port_is_the_health_port():
    config = load_config(CONFIG_EXAMPLE)
    (mapping,) = COMPOSE["services"]["verity"]["ports"]
    host_port, container_port = str(mapping).split(":")
    assert int(container_port) == config.service.http_port


def test_named_volumes_are_declared():
    for doc in (COMPOSE, GPU):
        declared = set(doc.get("volumes") or {})
        for service in doc["services"].values():
            for volume in service.get("volumes", []):
                source = volume.split(":")[0]
                if not source.startswith((".", "/")):
                    assert source in declared, f"volume {source} is not declared"


def test_gpu_override():
    verity = GPU["services"]["verity"]
    context, dockerfile = _build_paths(verity)
    assert dockerfile.is_file() and dockerfile.name == "Dockerfile.cuda"
    (device,) = verity["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    # The engine cache volume sits where the config (and the image) keep engines.
    config = load_config(CONFIG_EXAMPLE)
    targets = [v.split(":")[1] for v in verity["volumes"]]
    assert config.models.engine_cache_dir in targets
    env = verity["environment"]
    assert env["VERITY_MODELS__ENGINE_CACHE_DIR"] == config.models.engine_cache_dir
    ModelsConfig(runtime=env["VERITY_MODELS__RUNTIME"])  # a value the config accepts
    assert verity["image"] != COMPOSE["services"]["verity"]["image"]
