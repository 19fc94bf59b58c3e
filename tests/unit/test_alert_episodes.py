"""The scorer's model of Prometheus' alert state machine: `for:` and `keep_firing_for:`."""

from __future__ import annotations

from bench.alerting.evaluate import _episodes

STEP = 60
END = 10_000 * STEP


def _present(*runs: tuple[int, int]) -> set[int]:
    """Evaluation steps (in units of STEP) where the expression returns the series."""
    return {m * STEP for first, last in runs for m in range(first, last + 1)}


def _spans(steps: set[int], *, hold_s: float, keep_s: float = 0.0) -> list[tuple[int, int, int]]:
    found = _episodes("A", (), steps, step=STEP, hold_s=hold_s, end=END, keep_s=keep_s)
    return [(f.pending_at // STEP, f.fired_at // STEP, f.resolved_at // STEP) for f in found]


def test_for_fires_at_the_first_step_at_least_for_after_pending() -> None:
    assert _spans(_present((10, 20)), hold_s=5 * 60) == [(10, 15, 21)]
    assert _spans(_present((10, 20)), hold_s=90) == [(10, 12, 21)]


def test_a_pending_alert_that_goes_missing_never_fires() -> None:
    assert _spans(_present((10, 13), (30, 40)), hold_s=5 * 60) == [(30, 35, 41)]


def test_without_keep_firing_for_a_gap_is_a_new_episode() -> None:
    assert _spans(_present((10, 20), (25, 40)), hold_s=120) == [(10, 12, 21), (25, 27, 41)]


def test_keep_firing_for_bridges_a_gap_shorter_than_it() -> None:
    # missing from step 21: still firing until step 21 + 10; back at 25, so one episode
    assert _spans(_present((10, 20), (25, 40)), hold_s=120, keep_s=600) == [(10, 12, 51)]


def test_keep_firing_for_counts_from_the_first_missing_step() -> None:
    # missing from 21, still missing at 31 (31 - 21 >= 10 minutes): resolved at 31, and the
    # series back at 32 is a new episode
    assert _spans(_present((10, 20), (32, 40)), hold_s=120, keep_s=600) == [
        (10, 12, 31),
        (32, 34, 51),
    ]
    # present again at 31 itself: it was never missing at a step that resolves it
    assert _spans(_present((10, 20), (31, 40)), hold_s=120, keep_s=600) == [(10, 12, 51)]


def test_keep_firing_for_does_not_hold_a_pending_alert() -> None:
    assert _spans(_present((10, 11), (15, 16)), hold_s=300, keep_s=600) == []


def test_an_episode_open_at_the_end_resolves_at_the_end() -> None:
    assert _spans(_present((9_990, 9_999)), hold_s=60, keep_s=600) == [(9_990, 9_991, 10_000)]
