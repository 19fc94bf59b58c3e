"""bench.alerting.report: the scorer's per-tenant figures."""

from __future__ import annotations

from bench.alerting.report import IncidentResult, TenantScore, format_report, median_minutes


def test_median_counts_an_undetected_incident_as_the_latest() -> None:
    assert median_minutes([600.0, None, 1200.0]) == "20 min"
    assert median_minutes([600.0, None, None]) == "never"
    assert median_minutes([600.0, 1200.0]) == "15 min"


def _score(minutes: list[float | None]) -> TenantScore:
    score = TenantScore("small")
    for index, found in enumerate(minutes):
        score.incidents.append(
            IncidentResult(
                "network_outage", "clientDisconnected", f"Mon 05-2{index} 10:00", "-",
                None if found is None else "EnrollmentFailureCategorySpike", found,
            )
        )
    return score


def test_summary_gives_the_median_over_detected_and_over_all_incidents() -> None:
    """Missing the slow incidents improves the first median, never the second."""
    fast_only = format_report("r.yaml", 1, 28, [_score([10.0, 20.0, None, None, None])])
    found_all = format_report("r.yaml", 1, 28, [_score([10.0, 20.0, 30.0, 200.0, 300.0])])
    assert "median TTD 15 min (all 5: never)" in fast_only
    assert "median TTD 30 min (all 5: 30 min)" in found_all
    assert "detected 2/5" in fast_only and "MISSED" in fast_only
