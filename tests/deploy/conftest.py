"""Shared fixtures for the deploy/ checks.

External tools (promtool, kubectl or kustomize, kubernetes-validate, checkov) are installed by
scripts/install-deploy-tools.sh. A test that needs a missing tool is skipped on a developer
machine, but FAILS when the CI environment variable is set: CI must never go green by
skipping the checks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUSTOMIZE_DIRS = {
    "base": DEPLOY / "kubernetes" / "base",
    "event-hubs": DEPLOY / "kubernetes" / "overlays" / "event-hubs",
    "graph-source": DEPLOY / "kubernetes" / "overlays" / "graph-source",
    # The base plus one batch Job each (kustomize components under kubernetes/components/).
    "replay-dead-letters": DEPLOY / "kubernetes" / "overlays" / "replay-dead-letters",
    "reclassify": DEPLOY / "kubernetes" / "overlays" / "reclassify",
}
JOB_OVERLAYS = ("replay-dead-letters", "reclassify")
# Kubernetes version the manifests are validated against (kubernetes-validate bundles the
# schemas; keep within its supported range).
KUBERNETES_VERSION = "1.32.0"
INSTALL_HINT = "run scripts/install-deploy-tools.sh"


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def missing_tool(what: str) -> NoReturn:
    message = f"{what} is not available ({INSTALL_HINT})"
    if in_ci():
        pytest.fail(f"CI is set, so a missing tool is an error: {message}", pytrace=False)
    pytest.skip(message)


def run(
    argv: list[str], *, cwd: Path = REPO, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if not path:
        missing_tool("promtool (Debian package 'prometheus')")
    return path


def _kustomize_major(version_text: str) -> int:
    match = re.search(r"v(\d+)\.", version_text)
    return int(match.group(1)) if match else 0


@dataclass(frozen=True)
class Kustomize:
    argv: tuple[str, ...]
    version: str

    def build(self, directory: Path) -> str:
        result = run([*self.argv, str(directory)])
        assert result.returncode == 0, f"{' '.join(self.argv)} {directory} failed:\n{result.stderr}"
        return result.stdout


def _find_kustomize() -> Kustomize | None:
    kubectl = shutil.which("kubectl")
    if kubectl:
        result = run([kubectl, "version", "--client", "-o", "json"], timeout=30)
        if result.returncode == 0:
            try:
                version = json.loads(result.stdout).get("kustomizeVersion", "")
            except json.JSONDecodeError:
                version = ""
            # kubectl < 1.21 embeds kustomize v2, which lacks `labels`, components, ...
            if _kustomize_major(version) >= 5:
                return Kustomize((kubectl, "kustomize"), f"kubectl kustomize {version}")
    standalone = shutil.which("kustomize")
    if standalone:
        result = run([standalone, "version"], timeout=30)
        # `go install`ed builds report "(devel)"; the installer only builds the v5 module.
        if result.returncode == 0 and (
            _kustomize_major(result.stdout) >= 5 or "(devel)" in result.stdout
        ):
            return Kustomize((standalone, "build"), f"kustomize {result.stdout.strip()}")
    return None


@pytest.fixture(scope="session")
def kustomize() -> Kustomize:
    found = _find_kustomize()
    if found is None:
        missing_tool("kubectl with kustomize v5 (or a standalone kustomize v5)")
    return found


@pytest.fixture(scope="session")
def rendered_text(kustomize: Kustomize) -> dict[str, str]:
    """`kubectl kustomize` output of the base and every overlay, keyed by name."""
    return {name: kustomize.build(directory) for name, directory in KUSTOMIZE_DIRS.items()}


@pytest.fixture(scope="session")
def rendered(rendered_text: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Rendered documents of the base and every overlay, keyed by name."""
    return {
        name: [doc for doc in yaml.safe_load_all(text) if doc]
        for name, text in rendered_text.items()
    }


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


@pytest.fixture(scope="session")
def find_doc() -> Callable[..., dict[str, Any]]:
    return find


@pytest.fixture(scope="session")
def kubernetes_validate() -> Any:
    try:
        import kubernetes_validate as module
    except ImportError:
        missing_tool("the kubernetes-validate Python package")
    return module


def _checkov_binary() -> str | None:
    candidates = [
        os.environ.get("CHECKOV_BIN"),
        shutil.which("checkov"),
        # scripts/install-deploy-tools.sh keeps checkov in a venv of its own inside the project
        # venv (its pinned dependencies conflict with pytest's).
        str(Path(sys.prefix) / "checkov" / "bin" / "checkov"),
        str(REPO / ".venv" / "checkov" / "bin" / "checkov"),
        # installed by the project's `deploy` extra, if that is used instead
        str(Path(sys.prefix) / "bin" / "checkov"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@dataclass(frozen=True)
class CheckovRun:
    version: str
    reports: dict[str, dict[str, Any]]  # check_type -> report
    scanned_dir: Path


@pytest.fixture(scope="session")
def checkov_run(
    rendered_text: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> CheckovRun:
    """One checkov run per session over the Dockerfile and every rendered overlay."""
    binary = _checkov_binary()
    if binary is None:
        missing_tool("checkov")
    scan = tmp_path_factory.mktemp("checkov")
    shutil.copy(REPO / "Dockerfile", scan / "Dockerfile")
    for name, text in rendered_text.items():
        (scan / f"rendered-{name}.yaml").write_text(text, encoding="utf-8")
    version = run([binary, "--version"], timeout=60).stdout.strip()
    result = run(
        [
            binary,
            "--directory",
            str(scan),
            "--framework",
            "dockerfile",
            "kubernetes",
            "--skip-download",
            "--output",
            "json",
        ],
        timeout=300,
    )
    try:
        parsed = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov produced no JSON (rc={result.returncode}):\n{result.stderr[-3000:]}")
    reports = parsed if isinstance(parsed, list) else [parsed]
    return CheckovRun(version, {r["check_type"]: r for r in reports}, scan)
