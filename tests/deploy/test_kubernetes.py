"""Kubernetes manifests: kustomize renders, schema validation of built-in kinds, structural
checks of the custom resources, and the Deployment's operational policy."""

from __future__ import annotations

import copy
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import DEPLOY, KUBERNETES_VERSION, find, run

BUILTIN_KINDS = {
    "ServiceAccount",
    "ConfigMap",
    "Service",
    "Deployment",
    "PodDisruptionBudget",
    "NetworkPolicy",
}
CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
}
SECRET_EXAMPLES = [
    DEPLOY / "kubernetes" / "base" / "secret.example.yaml",
    DEPLOY / "kubernetes" / "overlays" / "event-hubs" / "secret.example.yaml",
]
REQUIRED_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS",
    "CLASSIFIER_INPUT_TOPIC",
    "CLASSIFIER_OUTPUT_TOPIC",
    "CLASSIFIER_DEAD_LETTER_TOPIC",
    "CLASSIFIER_GROUP_ID",
    "CLASSIFIER_GUARANTEE",
    "CLASSIFIER_LOG_LEVEL",
}
SECRET_MOUNT = "/var/run/secrets/kafka"
PARTITIONS_ANNOTATION = "enrollment-classifier.io/input-partitions"

Docs = list[dict[str, Any]]


@pytest.fixture(params=["base", "event-hubs", "graph-source"])
def docs(request: pytest.FixtureRequest, rendered: dict[str, Docs]) -> Docs:
    return rendered[request.param]


def _deployment(docs: Docs) -> dict[str, Any]:
    return find(docs, "Deployment", "enrollment-classifier")


def _container(docs: Docs) -> dict[str, Any]:
    containers = _deployment(docs)["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "worker")


def _config(docs: Docs) -> dict[str, str]:
    ref = _container(docs)["envFrom"][0]["configMapRef"]["name"]
    data: dict[str, str] = find(docs, "ConfigMap", ref)["data"]
    return data


def _pod_labels(docs: Docs) -> dict[str, str]:
    labels: dict[str, str] = _deployment(docs)["spec"]["template"]["metadata"]["labels"]
    return labels


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# --- rendering and schemas -------------------------------------------------------------------


def test_render_contains_expected_kinds(docs: Docs) -> None:
    kinds = {d["kind"] for d in docs}
    assert kinds == BUILTIN_KINDS | {k for _, k in CUSTOM_KINDS}
    namespaces = {d["metadata"].get("namespace") for d in docs}
    assert len(namespaces) == 1 and None not in namespaces and "default" not in namespaces
    assert not [d for d in docs if d["kind"] == "Secret"], "real Secrets are created out of band"


def test_builtin_kinds_validate_strict(docs: Docs, kubernetes_validate: Any) -> None:
    validated = set()
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        validated.add(doc["kind"])
    assert validated == BUILTIN_KINDS


def test_kubernetes_validate_cli_strict(
    rendered: dict[str, Docs],
    rendered_text: dict[str, str],
    kubernetes_validate: Any,
    tmp_path: Path,
) -> None:
    """The same check through the CLI, as a developer would run it."""
    cli = shutil.which("kubernetes-validate") or str(
        Path(sys.prefix) / "bin" / "kubernetes-validate"
    )
    files = []
    for name, text in rendered_text.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        files.append(str(path))
    result = run([cli, "-k", KUBERNETES_VERSION, "--strict", *files, *map(str, SECRET_EXAMPLES)])
    assert result.returncode == 0, result.stdout + result.stderr
    passed = re.findall(r"^INFO .* passed for resource", result.stdout, flags=re.M)
    builtin = sum(
        1
        for docs in rendered.values()
        for d in docs
        if (d["apiVersion"], d["kind"]) not in CUSTOM_KINDS
    )
    assert len(passed) == builtin + len(SECRET_EXAMPLES), result.stdout


def test_secret_examples_validate(kubernetes_validate: Any) -> None:
    for path in SECRET_EXAMPLES:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        assert doc["metadata"]["name"] == "enrollment-classifier-kafka"
        assert set(doc["stringData"]) == {"password"}


def test_strict_validation_rejects_unknown_fields(
    rendered: dict[str, Docs], kubernetes_validate: Any
) -> None:
    """Guard against a silently lenient validator: a typo'd field must fail."""
    broken = copy.deepcopy(_deployment(rendered["base"]))
    broken["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


# --- Deployment policy -----------------------------------------------------------------------


def _deployments(docs: Docs) -> list[dict[str, Any]]:
    """The worker's and, where an overlay adds it, the Graph source's."""
    return [d for d in docs if d["kind"] == "Deployment"]


def test_pod_security(docs: Docs) -> None:
    for deployment in _deployments(docs):
        _check_pod_security(deployment["spec"]["template"]["spec"])


def _check_pod_security(pod: dict[str, Any]) -> None:
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] >= 10000
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    for container in pod["containers"] + pod.get("initContainers", []):
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, container["name"]
        assert sc["readOnlyRootFilesystem"] is True, container["name"]
        assert sc["capabilities"]["drop"] == ["ALL"], container["name"]
        assert not sc["capabilities"].get("add"), container["name"]
        assert sc.get("privileged", False) is False
        assert sc["runAsNonRoot"] is True
        assert sc["seccompProfile"]["type"] == "RuntimeDefault"


def test_writable_tmp_only(docs: Docs) -> None:
    pod = _deployment(docs)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in _container(docs)["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    writable = [p for p, m in mounts.items() if not m.get("readOnly")]
    assert writable == ["/tmp"]


def test_probes(docs: Docs) -> None:
    container = _container(docs)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 9108}
    expected = {
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
        "startupProbe": "/healthz",
    }
    for probe, path in expected.items():
        get = container[probe]["httpGet"]
        assert get["path"] == path, probe
        assert get["port"] in ("metrics", 9108), probe
    liveness = container["livenessProbe"]
    # Liveness must tolerate a long batch: at least 30 s of consecutive failures.
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 30
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60


def test_resources(docs: Docs) -> None:
    resources = _container(docs)["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]

    def mebibytes(quantity: str) -> float:
        match = re.fullmatch(r"(\d+)(Mi|Gi)", quantity)
        assert match, quantity
        return int(match.group(1)) * (1024 if match.group(2) == "Gi" else 1)

    limit = mebibytes(resources["limits"]["memory"])
    assert limit >= mebibytes(resources["requests"]["memory"])
    config = _config(docs)
    # The librdkafka buffers must fit well inside the memory limit (Python needs the rest).
    buffers_mib = (
        int(config["RDKAFKA_QUEUED_MAX_MESSAGES_KBYTES"])
        + int(config["RDKAFKA_QUEUE_BUFFERING_MAX_KBYTES"])
    ) / 1024 + int(config["RDKAFKA_FETCH_MAX_BYTES"]) / 2**20
    assert buffers_mib <= limit / 2, f"librdkafka buffers {buffers_mib} MiB vs limit {limit} MiB"


def test_shutdown_and_rollout(docs: Docs) -> None:
    deployment = _deployment(docs)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > 30
    budget_ms = int(_config(docs).get("CLASSIFIER_SHUTDOWN_BUDGET_MS", "25000"))
    assert budget_ms + 5000 <= pod["terminationGracePeriodSeconds"] * 1000, \
        "the worker's shutdown budget must end well before the kubelet's SIGKILL"
    assert "replicas" not in deployment["spec"], "KEDA owns the replica count"
    container = _container(docs)
    assert "command" not in container, "keep the image's exec-form ENTRYPOINT (PID 1 gets SIGTERM)"
    assert container["args"] == ["run"]
    image = container["image"]
    assert ":" in image.rsplit("/", 1)[-1] or "@sha256:" in image
    assert not image.endswith(":latest")


def test_transactional_id_from_pod_name(docs: Docs) -> None:
    env = {e["name"]: e for e in _container(docs).get("env", [])}
    ref = env["CLASSIFIER_TRANSACTIONAL_ID"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert ref == "metadata.name"
    assert "CLASSIFIER_TRANSACTIONAL_ID" not in _config(docs), "must be unique per pod"


def test_no_static_membership(docs: Docs) -> None:
    names = set(_config(docs)) | {e["name"] for e in _container(docs).get("env", [])}
    assert "RDKAFKA_GROUP_INSTANCE_ID" not in names
    source = (DEPLOY / "kubernetes" / "base" / "deployment.yaml").read_text(encoding="utf-8")
    assert "static membership" in source.lower(), "keep the explanation next to the env"


def test_configuration(docs: Docs) -> None:
    config = _config(docs)
    assert set(config) >= REQUIRED_ENV
    assert config["CLASSIFIER_GUARANTEE"] in {"exactly-once", "at-least-once"}
    assert config.get("CLASSIFIER_METRICS_PORT", "9108") == "9108"
    for key, value in config.items():
        if re.search(r"PASSWORD|SECRET|KEY$", key) and not key.endswith("_FILE"):
            pytest.fail(f"{key} looks like a secret in a ConfigMap; use {key}_FILE")
        if key.endswith("_FILE"):
            assert value.startswith(SECRET_MOUNT + "/"), key
    mounts = {m["mountPath"]: m for m in _container(docs)["volumeMounts"]}
    assert mounts[SECRET_MOUNT]["readOnly"] is True
    pod = _deployment(docs)["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == mounts[SECRET_MOUNT]["name"])
    assert volume["secret"]["secretName"] == "enrollment-classifier-kafka"


def test_rdkafka_settings_are_valid_librdkafka_properties(docs: Docs) -> None:
    """Build a real consumer and producer from the RDKAFKA_* settings (nothing is sent: the
    bootstrap address is a closed port on 127.0.0.1)."""
    confluent_kafka = pytest.importorskip("confluent_kafka")
    config = {}
    for key, value in _config(docs).items():
        if key.startswith("RDKAFKA_") and not key.endswith("_FILE"):
            config[key.removeprefix("RDKAFKA_").lower().replace("_", ".")] = value
    assert config, "expected RDKAFKA_* settings"
    config.update(
        {"bootstrap.servers": "127.0.0.1:9", "group.id": "deploy-check", "sasl.password": "x"}
    )
    consumer = confluent_kafka.Consumer(config)
    consumer.close()
    producer = confluent_kafka.Producer(config)
    assert producer.flush(0) == 0


# --- Service, monitoring, disruption, network ----------------------------------------------------


def test_service_account(docs: Docs) -> None:
    account = find(docs, "ServiceAccount", "enrollment-classifier")
    assert account["automountServiceAccountToken"] is False
    assert (
        _deployment(docs)["spec"]["template"]["spec"]["serviceAccountName"]
        == "enrollment-classifier"
    )


def test_service_and_service_monitor(docs: Docs) -> None:
    service = find(docs, "Service", "enrollment-classifier")
    assert _selects(service["spec"]["selector"], _pod_labels(docs))
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["metrics"]["targetPort"] in ("metrics", 9108)

    monitor = find(docs, "ServiceMonitor", "enrollment-classifier")
    spec = monitor["spec"]
    assert _selects(spec["selector"]["matchLabels"], service["metadata"]["labels"])
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    assert spec["endpoints"], "ServiceMonitor needs endpoints"
    for endpoint in spec["endpoints"]:
        assert endpoint["port"] in ports, "ServiceMonitor port must name a Service port"
        assert endpoint.get("path", "/metrics") == "/metrics"
    # The alert rules select up{job="enrollment-classifier"}; the job label is the Service name.
    assert "jobLabel" not in spec and service["metadata"]["name"] == "enrollment-classifier"


def test_pod_disruption_budget(docs: Docs) -> None:
    pdb = find(docs, "PodDisruptionBudget", "enrollment-classifier")
    assert pdb["apiVersion"] == "policy/v1"
    assert _selects(pdb["spec"]["selector"]["matchLabels"], _pod_labels(docs))
    assert pdb["spec"].get("maxUnavailable") == 1 and "minAvailable" not in pdb["spec"]


def test_network_policy(docs: Docs) -> None:
    policy = find(docs, "NetworkPolicy", "enrollment-classifier")["spec"]
    assert _selects(policy["podSelector"]["matchLabels"], _pod_labels(docs))
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    ingress_ports = [p["port"] for rule in policy["ingress"] for p in rule["ports"]]
    assert ingress_ports == ["metrics"], "ingress only to the metrics port"
    egress = {
        (p["port"], p.get("protocol", "TCP")) for rule in policy["egress"] for p in rule["ports"]
    }
    assert {(53, "UDP"), (53, "TCP"), (9092, "TCP"), (9093, "TCP")} == egress


# --- KEDA ------------------------------------------------------------------------------------


def test_scaled_object(docs: Docs) -> None:
    scaled = find(docs, "ScaledObject", "enrollment-classifier")
    spec = scaled["spec"]
    target = spec["scaleTargetRef"]
    assert target.get("kind", "Deployment") == "Deployment"
    assert target["name"] == _deployment(docs)["metadata"]["name"]
    assert target.get("envSourceContainerName", "worker") == "worker"
    assert spec["minReplicaCount"] == 1
    partitions = int(scaled["metadata"]["annotations"][PARTITIONS_ANNOTATION])
    assert spec["maxReplicaCount"] == partitions, "maxReplicaCount must equal the partition count"
    config = _config(docs)
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    assert meta["bootstrapServersFromEnv"] == "KAFKA_BOOTSTRAP_SERVERS"
    assert meta["consumerGroupFromEnv"] == "CLASSIFIER_GROUP_ID"
    assert meta["topicFromEnv"] == "CLASSIFIER_INPUT_TOPIC"
    for key in ("bootstrapServersFromEnv", "consumerGroupFromEnv", "topicFromEnv"):
        assert meta[key] in config, f"{key} names a variable the ConfigMap does not set"
    assert int(meta["lagThreshold"]) > 0
    assert meta.get("allowIdleConsumers", "false") == "false"
    # One hot partition must not scale out idle consumers (KEDA 2.13+; needs a topic).
    assert meta["limitToPartitionsWithLag"] == "true" and meta["topicFromEnv"]
    # A broker replacement (no lag readable) must not leave the HPA without a metric.
    fallback = spec["fallback"]
    assert int(fallback["failureThreshold"]) >= 1
    assert spec["minReplicaCount"] <= int(fallback["replicas"]) <= spec["maxReplicaCount"]
    assert trigger.get("metricType", "AverageValue") == "AverageValue", "fallback needs it"
    protocol = config["RDKAFKA_SECURITY_PROTOCOL"]
    assert (meta.get("tls") == "enable") == protocol.endswith("SSL")
    mechanism = config.get("RDKAFKA_SASL_MECHANISMS", "")
    assert meta.get("sasl") == {
        "PLAIN": "plaintext",
        "SCRAM-SHA-512": "scram_sha512",
        "SCRAM-SHA-256": "scram_sha256",
    }.get(mechanism)

    auth = find(docs, "TriggerAuthentication", trigger["authenticationRef"]["name"])["spec"]
    for entry in auth.get("env", []):
        assert entry["name"] in config, entry
        assert entry.get("containerName", "worker") == "worker"
    pod = _deployment(docs)["spec"]["template"]["spec"]
    secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    for entry in auth.get("secretTargetRef", []):
        assert entry["name"] in secrets, "KEDA must read the same Secret the worker mounts"
    parameters = {e["parameter"] for e in auth.get("env", []) + auth.get("secretTargetRef", [])}
    assert {"username", "password"} <= parameters


def test_partition_count_is_documented() -> None:
    source = (DEPLOY / "kubernetes" / "base" / "keda.yaml").read_text(encoding="utf-8")
    assert "maxReplicaCount MUST equal the partition count" in source
    assert PARTITIONS_ANNOTATION in source


def test_event_hubs_overlay(rendered: dict[str, Docs]) -> None:
    docs = rendered["event-hubs"]
    config = _config(docs)
    assert re.fullmatch(r"[^:]+\.servicebus\.windows\.net:9093", config["KAFKA_BOOTSTRAP_SERVERS"])
    assert config["RDKAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["RDKAFKA_SASL_MECHANISMS"] == "PLAIN"
    assert config["RDKAFKA_SASL_USERNAME"] == "$ConnectionString"
    assert config["RDKAFKA_SASL_PASSWORD_FILE"] == f"{SECRET_MOUNT}/password"
    meta = find(docs, "ScaledObject")["spec"]["triggers"][0]["metadata"]
    assert meta["sasl"] == "plaintext" and meta["tls"] == "enable"
    # The base is unchanged by the overlay's merge.
    assert _config(rendered["base"])["RDKAFKA_SASL_MECHANISMS"] == "SCRAM-SHA-512"
