"""The folders' layering (worker/__init__.py) holds: import-linter checks the contracts in
pyproject.toml, and a second run on a copy with one forbidden import shows the check can fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    # A subprocess: import-linter builds its graph from sys.path, which must be `project` alone.
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
    return subprocess.run([sys.executable, "-P", "-c", code], cwd=project, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(project)}, check=False)


def test_every_layering_contract_is_kept() -> None:
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(("module", "forbidden"), [
    ("classify/normalize.py", "import confluent_kafka"),
    ("classify/catalog.py", "import prometheus_client"),
    ("classify/core.py", "from worker.stream import settings"),
    ("contracts/models.py", "import urllib.request"),
    ("stream/loop.py", "from worker.dev import samples"),
])
def test_a_forbidden_import_breaks_a_contract(tmp_path: Path, module: str, forbidden: str) -> None:
    shutil.copytree(ROOT / "worker", tmp_path / "worker",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    target = tmp_path / "worker" / module
    target.write_text(target.read_text() + f"\n{forbidden}  # noqa\n")
    done = _lint_imports(tmp_path)
    assert done.returncode != 0 and "BROKEN" in done.stdout, done.stdout + done.stderr
