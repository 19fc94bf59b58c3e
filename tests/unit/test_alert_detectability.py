"""bench.alerting.detectability: the false-alert cost of detecting an incident, for any rule."""

from __future__ import annotations

import math

import pytest

from bench.alerting import params
from bench.alerting.detectability import (
    ORACLES,
    AttemptCurve,
    _earliest,
    _least_cost,
    log_conditional_tail,
    log_tail,
    main,
)
from bench.alerting.simulate import Incident, simulate

DAY = 86400


def _direct_tail(mu: float, k: int) -> float:
    """P(Poisson(mu) >= k) as the plain sum of its terms (fine for these small cases)."""
    return sum(math.exp(-mu) * mu**i / math.factorial(i) for i in range(k, k + 80))


@pytest.mark.parametrize("mu", [0.01, 0.3, 2.0, 9.0])
@pytest.mark.parametrize("k", [0, 1, 3, 8, 20])
def test_log_tail_is_the_exact_poisson_tail(mu: float, k: int) -> None:
    assert log_tail(mu, k) == pytest.approx(math.log(_direct_tail(mu, k)), abs=1e-6)


@pytest.mark.parametrize("share", [0.001, 0.05, 0.3])
@pytest.mark.parametrize("baseline", [0, 2, 40])
@pytest.mark.parametrize("k", [1, 3, 8])
def test_log_conditional_tail_is_the_exact_binomial_tail(share: float, baseline: int,
                                                          k: int) -> None:
    n = k + baseline
    direct = sum(math.comb(n, i) * share**i * (1 - share) ** (n - i) for i in range(k, n + 1))
    got = log_conditional_tail(baseline, share, k)
    if k <= n * share:
        assert got == 0.0, "no excess: never small enough to fire on"
    else:
        assert got == pytest.approx(math.log(direct), abs=1e-6)


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


START = params.START_EPOCH + 8 * DAY + 10 * 3600  # a Tuesday, 10:00
INCIDENT = Incident("restriction_misconfigured", "enrollmentRestrictionsEnforced",
                    "platformBlocked", START, START + 4 * 3600)
ATTEMPTS = [START + i * 60.0 for i in range(-600, 900)]  # one a minute around it


def _failures(times: list[float]) -> dict[str, list[float]]:
    pair = "enrollmentRestrictionsEnforced/platformBlocked"
    return {pair: times, "enrollmentRestrictionsEnforced": times}


def _cost_with(failure_times: list[float]) -> float:
    curve = AttemptCurve("small", 28)
    cost = _least_cost(INCIDENT, _failures(failure_times), ATTEMPTS, curve, INCIDENT.end)
    assert cost is not None
    return cost.false_alerts


KNOWING, ALIKE, ESTIMATING = ORACLES


def _soonest(failure_times: list[float], alike: bool = False) -> float | None:
    firing = _earliest(INCIDENT, _failures(failure_times), ATTEMPTS, AttemptCurve("small", 28),
                       until=INCIDENT.end, oracle=ALIKE if alike else KNOWING)
    if firing is None:
        return None
    window = failure_times[: failure_times.index(INCIDENT.start + firing.after_s) + 1]
    assert firing.count <= len(window), "it fires on failures it has seen"
    return firing.after_s


def test_an_incident_with_no_failures_costs_a_false_alert_in_every_window() -> None:
    # "detecting" it means firing on nothing: every comparable window of the month fires
    assert _cost_with([]) >= 1


def test_many_failures_of_a_rare_cause_are_cheap_to_detect() -> None:
    few = _cost_with([START + 600.0, START + 1200.0])
    many = _cost_with([START + 60.0 * i for i in range(1, 11)])
    assert many < 1e-6 < few


def test_the_soonest_firing_is_at_a_failure_and_later_for_a_rule_watching_every_series() -> None:
    failures = [START + 300.0 * i for i in range(1, 13)]  # one every 5 minutes
    knowing, alike = _soonest(failures), _soonest(failures, alike=True)
    assert knowing is not None and alike is not None
    assert START + knowing in failures and START + alike in failures
    assert knowing < alike, "95 pairs watched alike need more failures than one cause"
    # one failure is never enough at one false alert a month, even for the oracle: a failure
    # of this cause every 25 hours by chance would then page daily
    assert knowing > 300.0


def test_no_failures_or_too_few_are_never_detected() -> None:
    assert _soonest([]) is None
    assert _soonest([START + 3600.0]) is None


def test_failures_sooner_are_detected_sooner() -> None:
    later = _soonest([START + 1800.0 + 300.0 * i for i in range(1, 13)])
    sooner = _soonest([START + 300.0 * i for i in range(1, 13)])
    assert later is not None and sooner is not None
    assert sooner < later


def _estimated_soonest(failure_times: list[float], attempts: list[float]) -> float | None:
    firing = _earliest(INCIDENT, _failures(failure_times), attempts, AttemptCurve("small", 28),
                       until=INCIDENT.end, oracle=ESTIMATING)
    return None if firing is None else firing.after_s


def test_a_cause_common_the_week_before_needs_more_failures_to_fire_on() -> None:
    burst = [START + 300.0 * i for i in range(1, 13)]
    # the estimating rule's baseline ends 6 hours before its window: one attempt a minute
    # for ten hours three days before, one in 60 of them failing for this cause or none
    earlier = [START - 3 * DAY + 60.0 * i for i in range(600)]
    quiet = _estimated_soonest(burst, earlier + ATTEMPTS)
    common = _estimated_soonest(earlier[::60] + burst, earlier + ATTEMPTS)
    assert quiet is not None and common is not None
    assert quiet < common


def test_command_prints_both_costs_of_every_incident(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--tenants", "small", "--days", "10"]) == 0
    out = capsys.readouterr().out
    incidents = simulate("small", 1, days=10).incidents
    assert incidents, "ten days hold incidents (from day 7 on)"
    assert out.count("      to detect at all ") == len(incidents)
    assert out.count("within  60 min") == len(incidents)
    assert f"of {len(incidents)} cost more than 1 false alert a month" in out
    for oracle in ORACLES:
        assert out.count(f"      soonest, {oracle.name}  ") == len(incidents)
        assert f"soonest firing at 1 false alert a month, {oracle.description}" in out
