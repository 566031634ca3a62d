"""deploy/k8s/verity-statefulset.yaml: N replicas share the stream list, as the agent expects."""

from __future__ import annotations

import pytest

from agent.cluster import my_streams
from agent.config import load_config
from tests.deploy.common import DEPLOY, RUN_ARGV, load_yaml_docs

DOCS = load_yaml_docs(DEPLOY / "k8s" / "verity-statefulset.yaml")


def _kind(kind: str) -> dict:
    (doc,) = [d for d in DOCS if d["kind"] == kind]
    return doc


@pytest.fixture(scope="module")
def container() -> dict:
    (c,) = _kind("StatefulSet")["spec"]["template"]["spec"]["containers"]
    return c


def env(container, name):
    (entry,) = [e for e in container["env"] if e["name"] == name]
    return entry


def test_replicas_setting_matches_the_statefulset_and_ordinal_is_the_pod_index(container):
    replicas = _kind("StatefulSet")["spec"]["replicas"]
    assert int(env(container, "VERITY_CLUSTER__REPLICAS")["value"]) == replicas
    ref = env(container, "VERITY_CLUSTER__ORDINAL")["valueFrom"]["fieldRef"]["fieldPath"]
    assert ref == "metadata.labels['apps.kubernetes.io/pod-index']"


def test_every_configured_stream_has_exactly_one_replica(container, tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    path.write_text(_kind("ConfigMap")["data"]["config.yaml"])
    replicas = int(env(container, "VERITY_CLUSTER__REPLICAS")["value"])
    shares = []
    for ordinal in range(replicas):
        monkeypatch.setenv("VERITY_CLUSTER__REPLICAS", str(replicas))
        monkeypatch.setenv("VERITY_CLUSTER__ORDINAL", str(ordinal))
        config = load_config(path)
        assert config.cluster.ordinal == ordinal
        assert config.service.keep_running is True  # an empty share must not exit
        shares.append([s.id for s in my_streams(config.streams, ordinal, replicas)])
    ids = [s.id for s in config.streams]
    assert sorted(i for share in shares for i in share) == sorted(ids)


def test_runs_the_mounted_config_with_probes_and_a_durable_spool(container):
    assert container["args"] == RUN_ARGV
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    claims = _kind("StatefulSet")["spec"]["volumeClaimTemplates"]
    assert any(m["name"] == "state" and m["mountPath"] == "/var/lib/verity"
               for m in container["volumeMounts"])
    assert [c["metadata"]["name"] for c in claims] == ["state"]
