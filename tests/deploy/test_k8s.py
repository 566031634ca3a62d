"""deploy/k8s/verity-sidecar.yaml: parses, and its probes, mounts, SDP and Secret agree with
the agent's config loader, CLI and the image."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from agent.cli import build_parser
from agent.config import load_config
from tests.deploy.common import CONTAINER_UID, DEPLOY, RUN_ARGV, load_yaml_docs

DOCS = load_yaml_docs(DEPLOY / "k8s" / "verity-sidecar.yaml")


def _one(kind: str, name: str) -> dict:
    (doc,) = [d for d in DOCS if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


@pytest.fixture(scope="module")
def pod() -> dict:
    (deployment,) = [d for d in DOCS if d["kind"] == "Deployment"]
    spec = deployment["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    return spec["template"]["spec"]


@pytest.fixture(scope="module")
def verity(pod) -> dict:
    (container,) = [c for c in pod["containers"] if c["name"] == "verity"]
    return container


@pytest.fixture(scope="module")
def config(tmp_path_factory, pod, verity):
    """The mounted config.yaml, validated by the agent's own loader."""
    mount = next(m for m in verity["volumeMounts"] if m["mountPath"] == RUN_ARGV[-1])
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    configmap = _one("ConfigMap", volume["configMap"]["name"])
    path = tmp_path_factory.mktemp("k8s") / "config.yaml"
    path.write_text(configmap["data"][mount["subPath"]])
    return load_config(path)


def test_every_document_has_kind_and_name():
    kinds = sorted(d["kind"] for d in DOCS)
    assert kinds == ["ConfigMap", "ConfigMap", "Deployment", "Secret"]
    for doc in DOCS:
        assert doc["apiVersion"] and doc["metadata"]["name"]


def test_verity_runs_the_mounted_config(verity):
    assert verity["args"] == RUN_ARGV
    build_parser().parse_args(verity["args"])


def test_probes_use_healthz_and_readyz_on_the_configured_port(verity, config):
    ports = {p["name"]: p["containerPort"] for p in verity["ports"]}
    assert config.service.http_host == "0.0.0.0"  # the kubelet probes the pod IP
    paths = {"startupProbe": "/healthz", "readinessProbe": "/readyz", "livenessProbe": "/healthz"}
    for probe, path in paths.items():
        get = verity[probe]["httpGet"]
        assert get["path"] == path
        port = get["port"]
        assert ports.get(port, port) == config.service.http_port, probe


def test_the_sidecar_waits_for_participants_and_guards_its_api(verity, config):
    # Participants join later: the agent must stay up (not crash-loop) and take WHIP pushes,
    # and an API reachable from the Pod network needs the token from the Secret.
    assert config.service.keep_running is True
    (env,) = [e for e in verity["env"] if e["name"] == "VERITY_SERVICE__TOKEN"]
    ref = env["valueFrom"]["secretKeyRef"]
    assert ref["key"] in _one("Secret", ref["name"])["stringData"]


def test_redis_url_comes_from_the_secret(verity):
    (env,) = [e for e in verity["env"] if e["name"] == "VERITY_ALERTS__REDIS_URL"]
    ref = env["valueFrom"]["secretKeyRef"]
    secret = _one("Secret", ref["name"])
    url = secret["stringData"][ref["key"]]
    assert url.startswith("redis://")


def test_secret_url_is_accepted_by_the_config(monkeypatch, tmp_path, pod, verity):
    (env,) = [e for e in verity["env"] if e["name"] == "VERITY_ALERTS__REDIS_URL"]
    ref = env["valueFrom"]["secretKeyRef"]
    monkeypatch.setenv(env["name"], _one("Secret", ref["name"])["stringData"][ref["key"]])
    configmap = _one("ConfigMap", "verity-config")
    path = tmp_path / "config.yaml"
    path.write_text(configmap["data"]["config.yaml"])
    assert load_config(path).alerts.redis_url.startswith("redis://redis.")


def test_sdp_stream_is_rtp_on_localhost(pod, verity, config):
    (stream,) = config.streams
    assert stream.kind == "sdp"
    url = PurePosixPath(stream.url)
    mount = next(m for m in verity["volumeMounts"] if PurePosixPath(m["mountPath"]) == url.parent)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    sdp = _one("ConfigMap", volume["configMap"]["name"])["data"][url.name]
    lines = dict(line.split("=", 1) for line in sdp.strip().splitlines())
    assert lines["v"] == "0" and lines["c"] == "IN IP4 127.0.0.1"
    media, port, proto, payload = lines["m"].split()
    assert (media, proto) == ("video", "RTP/AVP") and int(port) % 2 == 0  # RTCP on port + 1
    assert lines["a"].startswith(f"rtpmap:{payload} ")
    # The conferencing container is told the same port, and sees the same SDP.
    (sfu,) = [c for c in pod["containers"] if c["name"] != "verity"]
    assert {"name": "RTP_FORWARD_PORT", "value": port} in sfu["env"]
    assert any(m["name"] == mount["name"] for m in sfu["volumeMounts"])


def test_placeholder_image_is_marked(pod):
    (sfu,) = [c for c in pod["containers"] if c["name"] != "verity"]
    assert "REPLACE-ME" in sfu["image"]


def test_resources_and_security(pod, verity):
    for container in pod["containers"]:
        requests = container["resources"]["requests"]
        assert requests["cpu"] and requests["memory"], container["name"]
    security = verity["securityContext"]
    assert security["runAsNonRoot"] and security["runAsUser"] == CONTAINER_UID
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    # With a read-only root, everything the agent writes must be a volume.
    mounted = {m["mountPath"] for m in verity["volumeMounts"]}
    assert {"/var/lib/verity", "/var/cache/verity", "/tmp"} <= mounted


def test_spool_path_is_on_a_writable_volume(verity, config):
    mounted = [m["mountPath"] for m in verity["volumeMounts"] if not m.get("readOnly")]
    spool = str(config.alerts.spool_path)
    assert any(spool.startswith(path + "/") for path in mounted)
