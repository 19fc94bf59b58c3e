"""bench.alerting.detectability: the false-alert cost of detecting an incident, for any rule."""

from __future__ import annotations

import math

import pytest

from bench.alerting import params
from bench.alerting.detectability import AttemptCurve, _least_cost, log_tail, main
from bench.alerting.simulate import Incident, simulate

DAY = 86400


def _direct_tail(mu: float, k: int) -> float:
    """P(Poisson(mu) >= k) as the plain sum of its terms (fine for these small cases)."""
    return sum(math.exp(-mu) * mu**i / math.factorial(i) for i in range(k, k + 80))


@pytest.mark.parametrize("mu", [0.01, 0.3, 2.0, 9.0])
@pytest.mark.parametrize("k", [0, 1, 3, 8, 20])
def test_log_tail_is_the_exact_poisson_tail(mu: float, k: int) -> None:
    assert log_tail(mu, k) == pytest.approx(math.log(_direct_tail(mu, k)), abs=1e-6)


def test_more_failures_are_less_likely_by_chance() -> None:
    tails = [log_tail(0.5, k) for k in range(0, 12)]
    assert tails == sorted(tails, reverse=True)
    assert tails[0] == 0.0


def test_attempt_curve_follows_the_working_week() -> None:
    curve = AttemptCurve("small", 28)
    tuesday = params.START_EPOCH + 1 * DAY
    saturday = params.START_EPOCH + 5 * DAY
    per_day = params.TENANTS["small"].attempts_per_business_day
    assert curve.expected(tuesday, DAY) == pytest.approx(per_day * sum(params.HOURLY_PROFILE))
    assert curve.expected(saturday, DAY) == pytest.approx(per_day * params.WEEKEND_SHARE)
    # every business day expects at least a Tuesday's attempts (Mondays and the new-hire day
    # more), no weekend day does: 20 business days in four weeks
    assert curve.comparable_windows(DAY, curve.expected(tuesday, DAY)) == 20


def _cost_with(failure_times: list[float]) -> float:
    curve = AttemptCurve("small", 28)
    start = params.START_EPOCH + 8 * DAY + 10 * 3600  # a Tuesday, 10:00
    incident = Incident("restriction_misconfigured", "enrollmentRestrictionsEnforced",
                        "platformBlocked", start, start + 4 * 3600)
    attempts = [start + i * 60.0 for i in range(-600, 900)]  # one a minute around it
    pair = "enrollmentRestrictionsEnforced/platformBlocked"
    failures = {pair: failure_times, "enrollmentRestrictionsEnforced": failure_times}
    cost = _least_cost(incident, failures, attempts, curve, incident.end)
    assert cost is not None
    return cost.false_alerts


def test_an_incident_with_no_failures_costs_a_false_alert_in_every_window() -> None:
    # "detecting" it means firing on nothing: every comparable window of the month fires
    assert _cost_with([]) >= 1


def test_many_failures_of_a_rare_cause_are_cheap_to_detect() -> None:
    start = params.START_EPOCH + 8 * DAY + 10 * 3600
    few = _cost_with([start + 600.0, start + 1200.0])
    many = _cost_with([start + 60.0 * i for i in range(1, 11)])
    assert many < 1e-6 < few


def test_command_prints_both_costs_of_every_incident(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--tenants", "small", "--days", "10"]) == 0
    out = capsys.readouterr().out
    incidents = simulate("small", 1, days=10).incidents
    assert incidents, "ten days hold incidents (from day 7 on)"
    assert out.count("      to detect at all ") == len(incidents)
    assert out.count("within  60 min") == len(incidents)
    assert f"of {len(incidents)} cost more than 1 false alert a month" in out
