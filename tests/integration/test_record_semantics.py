"""End to end on a real broker: a mix of every input shape (Graph events of several types,
Autopilot deployment events mostly succeeding, diagnostic-log rows with ESP and Compliance
rows, report-export rows, unreadable input), checked against the oracle and the counters
against what the output topic holds, by category and by detail reason."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tests.integration.support import (
    Record,
    Topics,
    WorkerProcess,
    produce_samples,
    read_and_check,
    samples,
    source_of,
    wait_for,
)
from worker.classify.taxonomy import FailureCategory
from worker.dev.samples import SHAPE_WEIGHTS


def test_every_shape_counts_only_failures_and_counters_match_the_output_topic(
        kafka_bootstrap: str, topics: Callable[[int], Topics], unique_group: str,
        workers: list[WorkerProcess], tmp_path: Path) -> None:
    t = topics(3)
    messages = samples(1500, seed=23)
    assert {m.shape for m in messages} >= set(SHAPE_WEIGHTS)  # every readable shape
    produced = produce_samples(kafka_bootstrap, t.input, messages)
    expected = Counter(r.outcome for rs in produced.expected.values() for r in rs)
    assert min(expected[o] for o in ("skipped_success", "skipped_in_progress",
                                     "skipped_not_enrollment", "dead_letter")) > 0, expected
    worker = WorkerProcess(kafka_bootstrap, t, unique_group, log_dir=tmp_path).start()
    workers.append(worker)
    worker.wait_ready()

    # Every output is an expected failure of its category, once; successes, attempts in
    # progress and non-enrollment records appear nowhere (check_against_oracle).
    outputs, dead = read_and_check(kafka_bootstrap, t, produced)
    _check_deployment_phases(outputs, produced.expected)

    wait_for(lambda: worker.metric("enrollment_events_total", outcome="classified")
             == len(outputs), 60, "classified counter to catch up with the output topic")
    by_category = Counter(r.value["failureCategory"] for r in outputs)
    for category in FailureCategory:
        assert worker.metric_sum("enrollment_failures_total", failure_category=category.name) \
            == by_category[category.name], category
    assert worker.metric("enrollment_events_total", outcome="skipped_success") == \
        expected["skipped_success"]
    assert worker.metric("enrollment_events_total", outcome="skipped_other") == \
        expected["skipped_in_progress"] + expected["skipped_not_enrollment"]
    assert worker.metric("enrollment_events_total", outcome="dead_lettered") == len(dead)

    # The counters the alert rules read: by category (fresh and late together) and by detail.
    for category in FailureCategory:
        assert worker.metric_sum("enrollment_category_failures_total",
                                 failure_category=category.name) == by_category[category.name]
    by_detail = Counter((r.value["failureCategory"], r.value["detailReason"] or "none")
                        for r in outputs)
    exported = {(labels["failure_category"], labels["detail_reason"]): value
                for (name, ls), value in worker.metrics().items()
                if name == "enrollment_failure_details_total" and (labels := dict(ls))}
    assert {k: v for k, v in exported.items() if v} == dict(by_detail)
    for reason in ("success", "in_progress", "not_enrollment"):
        assert worker.metric("enrollment_skipped_records_total", reason=reason) == \
            expected[f"skipped_{reason}"], reason


def _check_deployment_phases(outputs: list[Record],
                             expected: dict[tuple[int, int], tuple[object, ...]]) -> None:
    phases = 0
    for r in outputs:
        p, off, idx = source_of(r)
        want = expected[(p, off)][idx]
        phase = getattr(want, "phase", None)
        if phase is not None:
            assert r.value["deployment"]["phase"] == phase, r.value
            phases += 1
        if r.value["source"]["shape"] not in ("autopilotEvent", "espLog"):
            assert r.value["deployment"] is None
    assert phases > 0
