"""The counters alerts read (issue 17): every series exists at zero before its first increment,
freshness and event age follow the record's own time against a clock passed in, and label
sets stay closed whatever the input says. Each test reads a fresh registry."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, get_args

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from worker.classify import catalog
from worker.classify.core import (
    NO_DETAIL,
    SHAPE_LABEL_OF,
    SHAPE_LABELS,
    Classified,
    Skipped,
    Source,
    classify_message,
)
from worker.classify.decode import Shape
from worker.classify.event_time import event_epoch
from worker.classify.taxonomy import Evidence, FailureCategory
from worker.dev.samples import generate
from worker.stream.metrics import (
    AGE_BUCKETS,
    DETAIL_SERIES,
    FRESHNESS_LABELS,
    Tally,
    WorkerMetrics,
)

NOW = 1_800_000_000.0  # processing time, Unix seconds (2027-01-15)
MAX_AGE = 3600.0
ISO_NOW = "2027-01-15T08:00:00Z"
assert event_epoch(ISO_NOW) == NOW


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _metrics() -> tuple[CollectorRegistry, WorkerMetrics]:
    registry = CollectorRegistry()
    return registry, WorkerMetrics(registry)


def _series(registry: CollectorRegistry, sample_name: str) -> dict[tuple[tuple[str, str], ...],
                                                                  float]:
    return {tuple(sorted(s.labels.items())): s.value for family in registry.collect()
            for s in family.samples if s.name == sample_name}


def _record(registry: CollectorRegistry, *events: dict[str, Any],
            now: float = NOW, max_age: float = MAX_AGE) -> WorkerMetrics:
    metrics = WorkerMetrics(registry)
    tally = Tally()
    for event in events:
        tally.add_all(classify_message(orjson.dumps(event), Source("t")), now, max_age)
    metrics.record(tally)
    return metrics


# --- pre-creation -----------------------------------------------------------------------------


def test_every_alerting_series_exists_at_zero_before_any_event() -> None:
    registry, _ = _metrics()
    categories = _series(registry, "enrollment_category_failures_total")
    assert categories == {
        (("failure_category", c.name), ("freshness", f)): 0.0
        for c in FailureCategory for f in FRESHNESS_LABELS}
    assert len(categories) == 24
    details = _series(registry, "enrollment_failure_details_total")
    assert set(details.values()) == {0.0}
    assert {(dict(k)["failure_category"], dict(k)["detail_reason"]) for k in details} == \
        set(DETAIL_SERIES)
    assert _series(registry, "enrollment_skipped_records_total") == {
        (("reason", r),): 0.0 for r in ("success", "in_progress", "not_enrollment")}
    ages = _series(registry, "enrollment_event_age_seconds_count")
    assert ages == {(("shape", s),): 0.0 for s in SHAPE_LABELS}


def test_detail_series_are_derived_from_the_catalog() -> None:
    expected = {(c.name, NO_DETAIL) for c in FailureCategory}
    for detail in catalog.DETAILS:
        expected |= {(c.name, detail.name) for c in (detail.category, *detail.also)}
    assert set(DETAIL_SERIES) == expected
    assert len(DETAIL_SERIES) == len(expected)  # no duplicates
    # Each detail at least under its own category, "none" under every category.
    assert {d for _, d in DETAIL_SERIES} == {NO_DETAIL, *(d.name for d in catalog.DETAILS)}


def _emitted_pairs(events: Sequence[bytes | None]) -> set[tuple[str, str]]:
    return {(o.category.name, o.detail_reason) for raw in events
            for o in classify_message(raw, Source("t")) if isinstance(o, Classified)}


def test_every_pair_the_classifier_emits_is_precreated() -> None:
    """Every detail evidence (name, code, phrase) under every category spelling, conflicting
    ones included: a detail reported under a category it was not pre-created for would be a
    series born at 1, which increase() cannot see."""
    reasons = [text for d in catalog.DETAILS
               for text in (d.name, *d.names, *(f"error 0x{c:08X}" for c in d.codes),
                            *d.phrases)]
    categories: list[object] = [None, "", "Not Available", "somethingNew",
                                *(c.name for c in FailureCategory), *range(12)]
    events = [orjson.dumps({"failureCategory": c, "failureReason": r})
              for c in categories for r in reasons]
    pairs = _emitted_pairs(events)
    assert len(pairs) > 60  # the loop above reaches most of the table
    assert pairs <= set(DETAIL_SERIES), sorted(pairs - set(DETAIL_SERIES))


def test_every_pair_in_the_sample_stream_is_precreated() -> None:
    pairs = _emitted_pairs([m.value for m in generate(3000, seed=17)])
    assert pairs <= set(DETAIL_SERIES), sorted(pairs - set(DETAIL_SERIES))


def test_every_decoded_shape_has_its_own_label() -> None:
    # A shape added to decode without a label would be counted as "other".
    assert all(SHAPE_LABEL_OF.get(shape, "other") != "other" for shape in get_args(Shape))
    assert set(SHAPE_LABEL_OF.values()) < set(SHAPE_LABELS)
    labels = set()
    samples = {"graphEvent": {"eventDateTime": ISO_NOW, "failureCategory": 1},
               "diagnosticLog": {"time": ISO_NOW, "properties": {"FailureCategory": "1"}},
               "flat": {"failureCategory": 1, "timestamp": ISO_NOW}}
    for shape, event in samples.items():
        (outcome,) = classify_message(orjson.dumps(event), Source("t"))
        assert isinstance(outcome, Classified), shape
        assert outcome.event_time == NOW, shape
        labels.add(outcome.shape_label)
    assert labels == {"graph", "log_row", "flat"}


# --- the counters after a committed window ------------------------------------------------------


def _get(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_a_window_counts_only_when_recorded() -> None:
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    tally = Tally()
    tally.add_all(classify_message(orjson.dumps(
        {"failureCategory": 4, "failureReason": "0x80180018", "eventDateTime": ISO_NOW}),
        Source("t")), NOW, MAX_AGE)
    get = registry.get_sample_value
    key = {"failure_category": "userValidation", "freshness": "fresh"}
    assert get("enrollment_category_failures_total", key) == 0
    metrics.record(tally)
    assert get("enrollment_category_failures_total", key) == 1
    assert get("enrollment_failure_details_total", {
        "failure_category": "userValidation", "detail_reason": "userNotLicensed"}) == 1
    assert get("enrollment_failures_total", {
        "failure_category": "userValidation", "os": "unknown", "enrollment_type": "unknown"}) == 1


@pytest.mark.parametrize(("event_time", "freshness"), [
    (_iso(NOW - 10), "fresh"),
    (_iso(NOW - MAX_AGE), "fresh"),  # exactly the limit is still fresh
    (_iso(NOW - MAX_AGE - 1), "late"),
    (_iso(NOW - 5 * 86400), "late"),
    (_iso(NOW + 600), "fresh"),  # clock skew: the future is not late
    (None, "fresh"),  # no event time: cannot be told apart, counts as fresh
    ("yesterday", "fresh"),  # unreadable: likewise
    (1_799_990_000, "late"),  # Unix seconds as a number
    (1_799_999_000_000, "fresh"),  # Unix milliseconds
])
def test_freshness_is_the_records_own_time_against_the_clock_passed_in(
        event_time: object, freshness: str) -> None:
    registry = CollectorRegistry()
    event: dict[str, object] = {"failureCategory": "deviceNotSupported"}
    if event_time is not None:
        event["eventDateTime"] = event_time
    _record(registry, event)
    other = "late" if freshness == "fresh" else "fresh"
    assert _get(registry, "enrollment_category_failures_total",
                failure_category="deviceNotSupported", freshness=freshness) == 1
    assert _get(registry, "enrollment_category_failures_total",
                failure_category="deviceNotSupported", freshness=other) == 0


def test_fresh_event_max_age_is_the_settings_value() -> None:
    two_hours_old = {"failureCategory": 1, "eventDateTime": _iso(NOW - 7200)}
    for max_age, freshness in ((3600.0, "late"), (3 * 3600.0, "fresh")):
        registry = CollectorRegistry()
        _record(registry, two_hours_old, max_age=max_age)
        assert _get(registry, "enrollment_category_failures_total",
                    failure_category="authentication", freshness=freshness) == 1


def test_event_age_histogram_by_shape() -> None:
    registry = CollectorRegistry()
    log_row = {"time": _iso(NOW - 4000), "operationName": "Enrollment", "resultType": "Fail",
               "properties": {"FailureCategory": "UserValidation"}}
    success_row = {**log_row, "resultType": "Success"}  # skipped, but its age is measured
    _record(registry,
            {"eventDateTime": _iso(NOW - 30), "failureCategory": 1},
            {"eventDateTime": _iso(NOW - 100), "failureCategory": 1},
            {"eventDateTime": _iso(NOW + 50), "failureCategory": 1},  # future: age 0
            log_row, success_row,
            {"failureCategory": 1},  # flat, no time: no age
            {"failureCategory": 1, "timestamp": "soon"})  # unreadable: no age

    def bucket(shape: str, le: str) -> float | None:
        return _get(registry, "enrollment_event_age_seconds_bucket", shape=shape, le=le)
    assert bucket("graph", "60.0") == 2 and bucket("graph", "300.0") == 3
    assert bucket("graph", "+Inf") == 3
    assert _get(registry, "enrollment_event_age_seconds_sum", shape="graph") == 130
    assert bucket("log_row", "3600.0") == 0 and bucket("log_row", "7200.0") == 2
    assert _get(registry, "enrollment_event_age_seconds_count", shape="flat") == 0
    assert _get(registry, "enrollment_skipped_records_total", reason="success") == 1
    assert [float(b) for b in AGE_BUCKETS] == [60, 300, 900, 1800, 3600, 7200, 21600, 86400,
                                               259200, 604800]


def test_skipped_records_by_reason() -> None:
    registry = CollectorRegistry()
    _record(registry,
            {"failureCategory": "Not Applicable"},
            {"operationName": "Compliance", "resultType": "None", "properties": {"x": 1}},
            {"records": []})  # an empty envelope is no record of an enrollment
    assert _get(registry, "enrollment_skipped_records_total", reason="success") == 1
    assert _get(registry, "enrollment_skipped_records_total", reason="not_enrollment") == 2
    assert _get(registry, "enrollment_skipped_records_total", reason="in_progress") == 0
    # A success is never a failure.
    assert sum(_series(registry, "enrollment_category_failures_total").values()) == 0


# --- closed sets under hostile values ----------------------------------------------------------


def _hostile_classified(i: int) -> Classified:
    return Classified(b"{}", None, f"id-{i}", FailureCategory(i % 12), Evidence.none,
                      f"os-{i}", f"type-{i}", f"detail-{i}", NOW - i, f"shape-{i}")


def test_hostile_labels_create_no_series() -> None:
    registry, metrics = _metrics()
    before = {name: len(_series(registry, name)) for name in (
        "enrollment_category_failures_total", "enrollment_failure_details_total",
        "enrollment_skipped_records_total", "enrollment_event_age_seconds_bucket")}
    tally = Tally()
    tally.add_all([_hostile_classified(i) for i in range(300)], NOW, MAX_AGE)
    tally.add_all([Skipped("empty_batch", None, event_time=NOW, shape_label="shape-x")], NOW, MAX_AGE)
    metrics.record(tally)
    after = {name: len(_series(registry, name)) for name in before}
    assert after == before
    assert _get(registry, "enrollment_event_age_seconds_count", shape="other") == 301
    assert sum(_series(registry, "enrollment_failure_details_total").values()) == 300
    assert _get(registry, "enrollment_failure_details_total", failure_category="unknown",
                detail_reason=NO_DETAIL) == 25


@given(st.one_of(st.none(), st.text(max_size=40),
                 st.from_regex(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)?",
                               fullmatch=True),
                 st.integers(min_value=-2**70, max_value=2**70).map(str),
                 st.floats(allow_nan=True, allow_infinity=True).map(str)))
def test_event_epoch_never_raises_and_is_finite(text: str | None) -> None:
    epoch = event_epoch(text)
    assert epoch is None or (isinstance(epoch, float) and abs(epoch) < 1e12)


_INT64 = st.integers(min_value=-2**63, max_value=2**63 - 1)  # what JSON encoders write


@given(st.dictionaries(st.sampled_from(["eventDateTime", "time", "EnrollmentTimeUTC",
                                        "timestamp", "failureCategory", "properties"]),
                       st.one_of(st.none(), st.booleans(), _INT64, st.floats(),
                                 st.text(max_size=30), st.lists(_INT64, max_size=2),
                                 st.dictionaries(st.text(max_size=5), st.text(max_size=5),
                                                 max_size=2))))
def test_any_event_time_value_is_counted_within_the_closed_sets(event: dict[str, Any]) -> None:
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    counts = {name: len(_series(registry, name)) for name in (
        "enrollment_category_failures_total", "enrollment_event_age_seconds_bucket")}
    tally = Tally()
    outcomes = classify_message(orjson.dumps(event), Source("t"))
    tally.add_all(outcomes, NOW, MAX_AGE)
    metrics.record(tally)
    assert {name: len(_series(registry, name)) for name in counts} == counts
    classified = sum(isinstance(o, Classified) for o in outcomes)
    assert sum(_series(registry, "enrollment_category_failures_total").values()) == classified


def test_skipped_graph_records_are_counted_by_reason_with_their_age() -> None:
    registry = CollectorRegistry()
    autopilot = "#microsoft.graph.deviceManagementAutopilotEvent"
    hour_ago = _iso(NOW - 3600)
    _record(registry,
            {"@odata.type": autopilot, "deploymentState": "inProgress", "eventDateTime": hour_ago},
            {"@odata.type": autopilot, "deploymentState": "success", "eventDateTime": hour_ago},
            {"@odata.type": "#microsoft.graph.deviceManagementTroubleshootingEvent",
             "eventDateTime": hour_ago})
    for reason in ("in_progress", "success", "not_enrollment"):
        assert _get(registry, "enrollment_skipped_records_total", reason=reason) == 1, reason
    assert _get(registry, "enrollment_event_age_seconds_count", shape="graph") == 3
    assert _get(registry, "enrollment_event_age_seconds_sum", shape="graph") == 3 * 3600
    assert sum(_series(registry, "enrollment_category_failures_total").values()) == 0
