"""A short scoring run of the real rules file on simulated traffic, in a real Prometheus.

bench/alerting (docs/alerting.md) simulates ten days of the 20,000-device tenant (a week of
baseline, then the first incidents of the month, a worker restart and a Monday wave),
backfills a TSDB with promtool, starts `prometheus` on 127.0.0.1, backfills the recording rules
and evaluates every failure alert at each evaluation step. The full 28-day, three-tenant run is
`python -m bench.alerting.score deploy/prometheus/rules/enrollment-classifier.rules.yaml`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.alerting.score import run_tenant

from .conftest import DEPLOY, missing_tool

RULES_FILE = DEPLOY / "prometheus" / "rules" / "enrollment-classifier.rules.yaml"
OLD_RULES = Path(__file__).resolve().parents[2] / "bench" / "alerting" / "before.rules.yaml"
DAYS = 10
# The 2,000-device tenant's slower incidents need more than ten days' baseline to be scored
# fairly (its misses are in docs/alerting.md); the medium one has three incidents in ten days.
TENANT = "medium"


@pytest.fixture(scope="module")
def prometheus_tools() -> None:
    for name in ("promtool", "prometheus"):
        if not shutil.which(name):
            missing_tool(f"{name} (Debian package 'prometheus')")


@pytest.fixture(scope="module")
def work(prometheus_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One simulated TSDB for both tests (run_tenant caches it there)."""
    return tmp_path_factory.mktemp("alert-scoring")


def test_short_month_is_detected_without_false_alerts(work: Path) -> None:
    score = run_tenant(RULES_FILE, TENANT, seed=1, days=DAYS, step=60, work=work)
    assert len(score.incidents) >= 2, "the short run must contain incidents to detect"
    missed = [i.kind for i in score.incidents if i.minutes_to_detect is None]
    assert not missed, f"missed {missed}; firings: {score.firings}"
    assert not score.false_alerts, f"false alerts: {score.false_alerts}"
    for incident in score.incidents:
        assert incident.minutes_to_detect is not None and incident.minutes_to_detect >= 0


def test_old_rule_misses_the_same_incidents(work: Path) -> None:
    """The scorer can fail a rule: the pre-issue-14 rule sees none of them at this size."""
    score = run_tenant(OLD_RULES, TENANT, seed=1, days=DAYS, step=60, work=work)
    assert score.incidents
    assert score.detected == 0
