"""checkov over the Dockerfile and every rendered kustomization (one run per session)."""

from __future__ import annotations

import re

from .conftest import REPO, CheckovRun


def test_checkov_scanned_everything(checkov_run: CheckovRun) -> None:
    assert set(checkov_run.reports) == {"dockerfile", "kubernetes"}, checkov_run.reports.keys()
    for check_type, report in checkov_run.reports.items():
        summary = report["summary"]
        assert summary["parsing_errors"] == 0, check_type
        assert summary["resource_count"] > 0, check_type
        assert summary["passed"] > 0, check_type


def test_checkov_has_no_failures(checkov_run: CheckovRun) -> None:
    failures = [
        f"{check_type}: {c['check_id']} {c['check_name']} ({c['resource']} in {c['file_path']})"
        for check_type, report in checkov_run.reports.items()
        for c in report["results"].get("failed_checks", [])
    ]
    assert not failures, "checkov " + checkov_run.version + " failed:\n" + "\n".join(failures)


def test_checkov_skips_are_justified(checkov_run: CheckovRun) -> None:
    for check_type, report in checkov_run.reports.items():
        for check in report["results"].get("skipped_checks", []):
            reason = (
                check.get("suppress_comment")
                or (check.get("check_result") or {}).get("suppress_comment")
                or ""
            ).strip()
            assert len(reason) >= 20, (
                f"{check_type}: skip of {check['check_id']} on {check['resource']} "
                f"needs a real justification, got {reason!r}"
            )


def test_inline_dockerfile_skips_have_reasons() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    for match in re.finditer(r"checkov:skip=([A-Z0-9_]+)(.*)", text):
        assert re.match(r":\s*\S.{10,}", match.group(2)), f"unjustified skip {match.group(1)}"


def test_kubernetes_skip_annotations_are_well_formed() -> None:
    """checkov reads `checkov.io/skipN: CHECK_ID=reason` and splits on '=' exactly once."""
    import yaml

    base = REPO / "deploy" / "kubernetes"
    for path in base.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not isinstance(doc, dict) or "metadata" not in doc:
                continue
            for key, value in (doc["metadata"].get("annotations") or {}).items():
                if key.startswith("checkov.io/skip"):
                    assert value.count("=") == 1, f"{path.name} {key}: exactly one '='"
                    check_id, reason = value.split("=")
                    assert re.fullmatch(r"CKV2?_[A-Z0-9_]+", check_id.strip()), value
                    assert len(reason.strip()) >= 20, f"{path.name} {key}: justify the skip"
