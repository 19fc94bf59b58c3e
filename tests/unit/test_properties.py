"""Property tests: no input makes the core raise, and classification is deterministic."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import check_outcome
from worker.classify.core import Classified, DeadLetter, Skipped, Source, classify_message

SOURCE = Source("fuzz", 1, 2)
KEYS = st.sampled_from(["failureCategory", "FailureCategory", "failureReason", "FailureReason",
                        "properties", "records", "value", "resultType", "operationName", "id",
                        "MessageId", "Os", "enrollmentType", "errorCode", "@odata.context",
                        "troubleshootingErrorDetails"]) | st.text(max_size=8)
SCALARS = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40)
           | st.sampled_from(["0x80180018", "UserNotLicensed", "Success", "Enrollment",
                              "Not Applicable", "-2145910760", "userAbandonment", "9"]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(KEYS, inner, max_size=6), max_leaves=25)


def _check(outcomes: list[Classified | DeadLetter | Skipped]) -> None:
    assert outcomes, "every message yields at least one outcome"
    for o in outcomes:
        assert isinstance(o, Classified | DeadLetter | Skipped)
        check_outcome(o)
        if isinstance(o, DeadLetter):
            assert o.error_class != "internal_error", o.message


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    _check(classify_message(raw, SOURCE))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_arbitrary_json_never_raises_and_is_deterministic(doc: object) -> None:
    raw = orjson.dumps(doc)
    first = classify_message(raw, SOURCE)
    _check(first)
    assert classify_message(raw, SOURCE) == first


@settings(max_examples=200)
@given(st.dictionaries(KEYS, JSON, max_size=6).map(lambda d: {"records": [d, "x", d]}))
def test_envelopes_yield_one_outcome_per_row(doc: dict[str, list[object]]) -> None:
    outcomes = classify_message(orjson.dumps(doc), SOURCE)
    assert len(outcomes) == 3
    assert isinstance(outcomes[1], DeadLetter)
    _check(outcomes)
