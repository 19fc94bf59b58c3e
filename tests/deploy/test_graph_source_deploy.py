"""The Graph source's manifests (components/graph-source, rendered by overlays/graph-source):
one poller, the secret as a file, probes on the one port, egress only to DNS, Kafka and public
HTTPS, and configuration the source's own loader accepts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import yaml

from worker.sources.graph.settings import add_arguments, load

from .conftest import DEPLOY, KUBERNETES_VERSION, find

COMPONENT = DEPLOY / "kubernetes" / "components" / "graph-source"
GRAPH_MOUNT = "/var/run/secrets/graph"
Docs = list[dict[str, Any]]


@pytest.fixture
def docs(rendered: dict[str, Docs]) -> Docs:
    return rendered["graph-source"]


def _source(docs: Docs) -> dict[str, Any]:
    return find(docs, "Deployment", "enrollment-graph-source")


def _container(docs: Docs) -> dict[str, Any]:
    (container,) = _source(docs)["spec"]["template"]["spec"]["containers"]
    return container


def _environment(docs: Docs) -> dict[str, str]:
    """What the container sees: every envFrom ConfigMap in order (later wins)."""
    env: dict[str, str] = {}
    for ref in _container(docs)["envFrom"]:
        env.update(find(docs, "ConfigMap", ref["configMapRef"]["name"])["data"])
    return env


def test_only_the_overlay_adds_the_source(rendered: dict[str, Docs]) -> None:
    assert not [d for d in rendered["base"] if d["metadata"]["name"].startswith(
        "enrollment-graph-source")]
    names = {(d["kind"], d["metadata"]["name"].rsplit("-", 1)[0] if d["kind"] == "ConfigMap"
              else d["metadata"]["name"]) for d in rendered["graph-source"]}
    assert {("Deployment", "enrollment-graph-source"), ("Service", "enrollment-graph-source"),
            ("ServiceMonitor", "enrollment-graph-source"),
            ("NetworkPolicy", "enrollment-graph-source"),
            ("ConfigMap", "enrollment-graph-source-config")} <= names


def test_one_poller_that_is_replaced_not_doubled(docs: Docs) -> None:
    spec = _source(docs)["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
    container = _container(docs)
    assert container["args"] == ["pull-graph"] and "command" not in container
    env = {e["name"] for e in container.get("env", [])}
    assert "GRAPH_TRANSACTIONAL_ID" not in env, "stable per tenant, never the pod name"


def test_secret_is_a_mounted_file(docs: Docs) -> None:
    env = _environment(docs)
    assert env["GRAPH_CLIENT_SECRET_FILE"].startswith(GRAPH_MOUNT + "/")
    assert not [k for k in env if k in ("GRAPH_CLIENT_SECRET", "GRAPH_CLIENT_SECRET_VALUE")]
    mounts = {m["mountPath"]: m for m in _container(docs)["volumeMounts"]}
    assert mounts[GRAPH_MOUNT]["readOnly"] is True
    pod = _source(docs)["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == mounts[GRAPH_MOUNT]["name"])
    assert volume["secret"]["secretName"] == "enrollment-graph-source"
    writable = [p for p, m in mounts.items() if not m.get("readOnly")]
    assert writable == ["/tmp"]


def test_secret_example(kubernetes_validate: Any) -> None:
    doc = yaml.safe_load((COMPONENT / "secret.example.yaml").read_text(encoding="utf-8"))
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    assert doc["metadata"]["name"] == "enrollment-graph-source"
    assert set(doc["stringData"]) == {"client-secret"}
    assert _file_setting("GRAPH_CLIENT_SECRET_FILE") == (GRAPH_MOUNT + "/client-secret")


def _file_setting(name: str) -> str:
    for line in (COMPONENT / "graph-source.env").read_text(encoding="utf-8").splitlines():
        if line.startswith(name + "="):
            return line.split("=", 1)[1]
    raise AssertionError(f"{name} not in graph-source.env")


def test_the_source_accepts_its_configuration(docs: Docs, tmp_path: Path) -> None:
    """The rendered environment through the source's own loader (the secret file replaced by a
    temporary one): every name is one it reads, every value one it accepts."""
    env = _environment(docs)
    secret = tmp_path / "client-secret"
    secret.write_text("x")
    env["GRAPH_CLIENT_SECRET_FILE"] = str(secret)
    env["RDKAFKA_SASL_PASSWORD_FILE"] = str(secret)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    settings = load(parser.parse_args([]), env)
    assert settings.graph.tenant_id == "11111111-2222-3333-4444-555555555555"
    assert settings.kafka.input_topic == env["CLASSIFIER_INPUT_TOPIC"]
    graph_names = {k for k in env if k.startswith("GRAPH_")}
    from worker.sources.graph.settings import GraphSettings, graph_env_name
    known = {graph_env_name(f) for f in GraphSettings.model_fields}
    assert {n.removesuffix("_FILE") for n in graph_names} <= known


def test_probes_and_port(docs: Docs) -> None:
    container = _container(docs)
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"metrics": 9108}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"),
                        ("startupProbe", "/healthz")):
        assert container[probe]["httpGet"] == {"path": path, "port": "metrics"}
    live = container["livenessProbe"]
    # A throttled tenant must not be restarted: the source beats while it waits, and
    # /healthz only fails after 10 minutes without a turn; the probe adds its own margin.
    assert live["periodSeconds"] * live["failureThreshold"] >= 120


def test_network_policy(docs: Docs) -> None:
    policy = find(docs, "NetworkPolicy", "enrollment-graph-source")["spec"]
    labels = _source(docs)["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert [p["port"] for r in policy["ingress"] for p in r["ports"]] == ["metrics"]
    egress = policy["egress"]
    ports = {(p["port"], p.get("protocol", "TCP")) for r in egress for p in r["ports"]}
    assert ports == {(53, "UDP"), (53, "TCP"), (9092, "TCP"), (9093, "TCP"), (443, "TCP")}
    (https,) = [r for r in egress if any(p["port"] == 443 for p in r["ports"])]
    (block,) = https["to"]
    assert block["ipBlock"]["cidr"] == "0.0.0.0/0"
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(
        block["ipBlock"]["except"]), "public HTTPS only; never the metadata endpoint"
    # The worker's policy does not select the source, nor the source's the worker.
    worker = find(docs, "NetworkPolicy", "enrollment-classifier")["spec"]["podSelector"]
    assert worker["matchLabels"]["app.kubernetes.io/component"] == "worker"


def test_fqdn_example_names_the_configured_hosts(docs: Docs) -> None:
    doc = yaml.safe_load((COMPONENT / "ciliumnetworkpolicy.example.yaml").read_text("utf-8"))
    names = {m["matchName"] for rule in doc["spec"]["egress"] for m in rule.get("toFQDNs", [])}
    env = _environment(docs)
    hosts = {env[k].removeprefix("https://").rstrip("/") for k in ("GRAPH_URL",
                                                                    "GRAPH_AUTHORITY_URL")}
    assert names == hosts
    labels = _source(docs)["spec"]["template"]["metadata"]["labels"]
    assert doc["spec"]["endpointSelector"]["matchLabels"].items() <= labels.items()


def test_metrics_are_scraped(docs: Docs) -> None:
    service = find(docs, "Service", "enrollment-graph-source")
    labels = _source(docs)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    monitor = find(docs, "ServiceMonitor", "enrollment-graph-source")["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["endpoints"]] == ["metrics"]
    # The worker's Service must not pick up the source's pods (its alerts count workers).
    worker = find(docs, "Service", "enrollment-classifier")["spec"]["selector"]
    assert not worker.items() <= labels.items()


def test_source_metrics_pass_promtool(promtool: str, tmp_path: Path) -> None:
    """The source's exposition, with every series touched, through `promtool check metrics`."""
    from prometheus_client import CollectorRegistry, generate_latest

    from worker.sources.graph.endpoints import COLLECTIONS
    from worker.sources.graph.metrics import GraphMetrics

    from .conftest import run

    registry = CollectorRegistry()
    metrics = GraphMetrics(registry, COLLECTIONS, lambda: 1000.0)
    for name in COLLECTIONS:
        metrics.request(name, "ok")
        metrics.wait(name, "throttled", 2.0)
        metrics.committed(name, 1, {"before_window": 1}, checkpoint_time=990.0)
    path = tmp_path / "metrics.txt"
    path.write_bytes(generate_latest(registry))
    result = run(["sh", "-c", f"{promtool} check metrics < {path}"])
    assert result.returncode == 0, result.stdout + result.stderr
