"""bench.alerting.evidence counts from the scorer's own draw of the month."""

from __future__ import annotations

import pytest

from bench.alerting.evidence import evidence, main
from bench.alerting.simulate import simulate


def test_evidence_counts_the_scorers_incidents() -> None:
    found = evidence("small", seed=1, days=10)
    assert [e.incident for e in found] == simulate("small", 1, days=10).incidents
    assert found, "ten days hold incidents (from day 7 on)"
    for e in found:
        assert e.category_during >= e.detail_during >= 0
        assert e.category_week_before >= e.detail_week_before >= 0
    # an incident adds failures of its own category: the tool sees them
    assert sum(e.category_during for e in found) > sum(e.category_week_before for e in found)


def test_evidence_command_prints_every_incident(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--tenants", "small", "--days", "10"]) == 0
    out = capsys.readouterr().out
    assert out.count(" h  ") == len(evidence("small", seed=1, days=10))
