"""The batch Jobs (replay-dead-letters, reclassify): each overlay is the base unchanged plus
one Job and its NetworkPolicy; the Job runs with the Deployment's security context, settings
and credentials, and its arguments are ones the real CLI accepts."""

from __future__ import annotations

import re
from typing import Any

import pytest

from worker.cli import _parser

from .conftest import JOB_OVERLAYS, KUBERNETES_VERSION, find

Docs = list[dict[str, Any]]


@pytest.fixture(params=JOB_OVERLAYS)
def overlay(request: pytest.FixtureRequest, rendered: dict[str, Docs]) -> tuple[str, Docs]:
    return request.param, rendered[request.param]


def _job(name: str, docs: Docs) -> dict[str, Any]:
    return find(docs, "Job", f"enrollment-classifier-{name}")


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = doc["spec"]["template"]["spec"]
    return pod


def _deployment_pod(docs: Docs) -> dict[str, Any]:
    return _pod(find(docs, "Deployment", "enrollment-classifier"))


def test_overlay_is_the_base_plus_the_job(overlay: tuple[str, Docs],
                                          rendered: dict[str, Docs]) -> None:
    name, docs = overlay
    job, policy = _job(name, docs), find(docs, "NetworkPolicy",
                                         f"enrollment-classifier-{name}")
    rest = [d for d in docs if d is not job and d is not policy]
    assert rest == rendered["base"], "the job overlay must leave the worker's resources alone"
    assert job["metadata"]["namespace"] == find(docs, "Deployment")["metadata"]["namespace"]


def test_job_validates_strict(overlay: tuple[str, Docs], kubernetes_validate: Any) -> None:
    name, docs = overlay
    kubernetes_validate.validate(_job(name, docs), KUBERNETES_VERSION, strict=True)


def test_same_security_context_settings_and_credentials_as_the_deployment(
        overlay: tuple[str, Docs]) -> None:
    name, docs = overlay
    pod, worker_pod = _pod(_job(name, docs)), _deployment_pod(docs)
    for key in ("securityContext", "serviceAccountName", "automountServiceAccountToken",
                "enableServiceLinks", "volumes"):
        assert pod[key] == worker_pod[key], key
    (container,) = pod["containers"]
    worker = next(c for c in worker_pod["containers"] if c["name"] == "worker")
    for key in ("securityContext", "envFrom", "volumeMounts", "image", "imagePullPolicy"):
        assert container[key] == worker[key], key
    assert "command" not in container, "keep the image's exec-form ENTRYPOINT"
    assert pod["terminationGracePeriodSeconds"] > 30


def test_job_retries_resume_and_bad_configuration_fails_at_once(
        overlay: tuple[str, Docs]) -> None:
    name, docs = overlay
    job = _job(name, docs)
    spec = job["spec"]
    assert _pod(job)["restartPolicy"] == "Never" and spec["backoffLimit"] >= 1
    (rule,) = spec["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == [2]
    assert spec["activeDeadlineSeconds"] > 0 and spec["ttlSecondsAfterFinished"] > 0
    env = {e["name"] for e in _pod(job)["containers"][0].get("env", [])}
    assert "CLASSIFIER_TRANSACTIONAL_ID" not in env, "the job derives a stable one itself"


def test_arguments_are_accepted_by_the_cli(overlay: tuple[str, Docs]) -> None:
    name, docs = overlay
    (container,) = _pod(_job(name, docs))["containers"]
    env = {e["name"]: e["value"] for e in container.get("env", [])}
    args = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in container["args"]]
    assert args[0] == name
    parsed = _parser().parse_args(args)
    assert parsed.command == name
    if name == "reclassify":
        assert parsed.since is not None, "reclassify needs --since"


def test_network_policy_selects_the_job_and_allows_only_dns_and_kafka(
        overlay: tuple[str, Docs]) -> None:
    name, docs = overlay
    policy = find(docs, "NetworkPolicy", f"enrollment-classifier-{name}")["spec"]
    labels = _job(name, docs)["spec"]["template"]["metadata"]["labels"]
    selector = policy["podSelector"]["matchLabels"]
    assert selector and all(labels.get(k) == v for k, v in selector.items())
    worker_labels = find(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert not all(worker_labels.get(k) == v for k, v in selector.items())
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"} and policy["ingress"] == []
    worker_policy = find(docs, "NetworkPolicy", "enrollment-classifier")["spec"]
    assert policy["egress"] == worker_policy["egress"]
