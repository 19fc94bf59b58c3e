"""Static checks of the Dockerfile, .dockerignore, compose file and the tool installer.
(Building the image needs a Docker engine and is not done here.)"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import yaml

from .conftest import DEPLOY, REPO, missing_tool, run

DOCKERFILE = REPO / "Dockerfile"
INSTALLER = REPO / "scripts" / "install-deploy-tools.sh"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined: list[str] = []
    buffer = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        joined.append(buffer + line)
        buffer = ""
    out = []
    for line in joined:
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def test_multi_stage_with_pinned_slim_python() -> None:
    froms = [rest for keyword, rest in instructions() if keyword == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    images = {rest.split()[0] for rest in froms}
    assert len(images) == 1, f"all stages must share one base image: {images}"
    (image,) = images
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", image), image
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "@sha256:" in text, "document digest pinning"


def test_final_stage_is_lean() -> None:
    final = stages()[-1]
    runs = " ".join(rest for keyword, rest in final if keyword == "RUN")
    for forbidden in ("pip install", "pip wheel", "apt-get install", "gcc", "build-essential"):
        assert forbidden not in runs, f"final stage must not run {forbidden!r}"
    copies = [rest for keyword, rest in final if keyword == "COPY"]
    assert copies == ["--from=builder /opt/venv /opt/venv"], copies
    builder = " ".join(rest for keyword, rest in stages()[0] if keyword in ("RUN", "ENV"))
    assert "PIP_NO_CACHE_DIR=1" in builder and "pip wheel" in builder


def test_runtime_contract() -> None:
    final = dict(stages()[-1][::-1])  # last occurrence wins
    user = final["USER"]
    assert re.fullmatch(r"\d+(:\d+)?", user), "numeric UID so runAsNonRoot can verify it"
    assert int(user.split(":")[0]) >= 10000
    assert json.loads(final["ENTRYPOINT"]) == ["python", "-m", "worker"]
    assert json.loads(final["CMD"]) == ["run"]
    assert final["EXPOSE"] == "9108"
    healthcheck = final.get("HEALTHCHECK", "")
    if healthcheck:
        assert "/healthz" in healthcheck and 'CMD ["' in healthcheck, "exec-form healthcheck"


def test_uid_matches_kubernetes() -> None:
    deployment = yaml.safe_load((DEPLOY / "kubernetes" / "base" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    final = dict(stages()[-1][::-1])
    uid, gid = (int(x) for x in final["USER"].split(":"))
    assert pod["securityContext"]["runAsUser"] == uid
    assert pod["securityContext"]["runAsGroup"] == gid


def test_dockerignore_is_an_allow_list() -> None:
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "start by excluding everything"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert {"pyproject.toml", "worker"} <= allowed
    assert not allowed & {".venv", "tests", "deploy", ".git", "bench"}


def test_compose_file() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"kafka", "worker", "prometheus", "grafana"} <= set(services)
    assert services["worker"]["build"]["context"] == ".."
    assert (DEPLOY / services["worker"]["build"]["context"] / "Dockerfile").is_file()
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"


def test_installer_script_syntax() -> None:
    result = run(["bash", "-n", str(INSTALLER)])
    assert result.returncode == 0, result.stderr
    text = INSTALLER.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash") or text.startswith("#!/bin/bash")
    assert "set -euo pipefail" in text


def test_installer_passes_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    if not shellcheck:
        missing_tool("shellcheck (Debian package 'shellcheck')")
    result = run([shellcheck, str(INSTALLER)])
    assert result.returncode == 0, result.stdout


def test_paths_in_docs_exist() -> None:
    """Every repository path mentioned in the deploy README and rule comments exists."""
    for doc in (
        DEPLOY / "README.md",
        DEPLOY / "prometheus" / "rules" / "enrollment-classifier.rules.yaml",
    ):
        for path in set(
            re.findall(
                r"\b((?:deploy|tests|scripts)/[\w./-]+\.(?:ya?ml|json|py|md|sh|tmpl))",
                doc.read_text(),
            )
        ):
            assert (REPO / path).exists() or any(Path(REPO).glob(path)), f"{doc.name}: {path}"
