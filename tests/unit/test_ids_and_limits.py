"""Ids that identify events, and the per-message bounds on work (pure core, no broker)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import orjson

from tests.helpers import check_outcome, one_event
from worker.classify.core import (
    Classified,
    CoreOptions,
    DeadLetter,
    Source,
    classify_message,
)
from worker.dev.samples import generate

SOURCE = Source("raw", 3, 17)


def _event(doc: Mapping[str, object], source: Source = SOURCE) -> dict[str, Any]:
    (outcome,) = classify_message(orjson.dumps(doc), source)
    assert isinstance(outcome, Classified), outcome
    body = check_outcome(outcome)
    assert body is not None
    return body


def test_equal_content_at_other_coordinates_keeps_distinct_ids() -> None:
    doc = {"failureCategory": 1, "userId": "u1"}  # no event time: nothing identifies it
    a, b = _event(doc, Source("raw", 0, 5)), _event(doc, Source("raw", 0, 6))
    assert a["idSource"] == b["idSource"] == "source"
    assert a["id"] != b["id"]
    assert _event(doc, Source("raw", 0, 5))["id"] == a["id"], "a replay reproduces the id"


def test_identifying_fields_make_the_id_wherever_the_event_was_read() -> None:
    doc = {"failureCategory": "authentication", "eventDateTime": "2026-11-02T09:15:27Z",
           "managedDeviceIdentifier": "dev-1", "userId": "u1", "correlationId": "c-1"}
    a, b = _event(doc, Source("raw", 0, 5)), _event(doc, Source("other", 2, 99))
    assert a["idSource"] == "fields" and a["id"] == b["id"]
    later = _event({**doc, "eventDateTime": "2026-11-02T09:15:28Z"})
    other_device = _event({**doc, "managedDeviceIdentifier": "dev-2"})
    assert len({a["id"], later["id"], other_device["id"]}) == 3


def test_a_time_without_anyone_to_attach_it_to_is_not_identifying() -> None:
    doc = {"failureCategory": 1, "eventDateTime": "2026-11-02T09:15:27Z"}
    assert _event(doc)["idSource"] == "source"


def test_own_id_wins() -> None:
    assert one_event({"failureCategory": 1, "id": "abc"})["idSource"] == "event"


def test_empty_rows_of_an_envelope_get_one_id_each() -> None:
    outcomes = classify_message(orjson.dumps({"records": [{}] * 50}), Source("raw", 1, 7))
    ids = {orjson.loads(o.value)["id"] for o in outcomes if isinstance(o, Classified)}
    assert len(ids) == 50


def test_ids_over_the_sample_stream_never_merge_distinct_events() -> None:
    """Property over the oracle's stream: every classified output of a distinct (partition,
    offset, record) has its own id, and reading the stream again yields the same ids."""
    messages = list(generate(4000, seed=77, bad_ratio=0.05))

    def ids() -> dict[tuple[int, int | None], str]:
        out: dict[tuple[int, int | None], str] = {}
        for offset, m in enumerate(messages):
            for o in classify_message(m.value, Source("raw", offset % 3, offset)):
                if isinstance(o, Classified):
                    doc = orjson.loads(o.value)
                    out[(offset, doc["source"]["recordIndex"])] = doc["id"]
        return out

    first = ids()
    counts = Counter(first.values())
    collisions = {i: n for i, n in counts.items() if n > 1}
    assert len(first) > 4000 and not collisions, list(collisions.items())[:5]
    assert ids() == first


# ------------------------------------------------------------------ bounded work per message
def test_an_envelope_over_the_record_limit_is_dead_lettered_whole_once() -> None:
    raw = orjson.dumps({"records": [0] * 101})
    (dead,) = classify_message(raw, Source("raw"), CoreOptions(max_records=100))
    assert isinstance(dead, DeadLetter) and dead.error_class == "too_many_records"
    body = check_outcome(dead)
    assert body is not None and body["payloadScope"] == "message"
    assert body["payload"].encode() == raw and body["source"]["recordIndex"] is None
    at_limit = classify_message(orjson.dumps({"records": [0] * 100}), Source("raw"),
                                CoreOptions(max_records=100))
    assert len(at_limit) == 100


def test_a_page_over_the_record_limit_too() -> None:
    raw = orjson.dumps({"value": [{}] * 11, "@odata.context": "x"})
    (dead,) = classify_message(raw, Source("raw"), CoreOptions(max_records=10))
    assert isinstance(dead, DeadLetter) and dead.error_class == "too_many_records"


def test_outputs_over_the_byte_limit_dead_letter_the_message_instead() -> None:
    raw = orjson.dumps({"records": [{"failureCategory": 1}] * 40})
    outcomes = classify_message(raw, Source("raw"))
    size = sum(len(o.value) for o in outcomes if isinstance(o, Classified))
    limited = classify_message(raw, Source("raw"), CoreOptions(max_output_bytes=size - 1))
    assert len(limited) == 1 and isinstance(limited[0], DeadLetter)
    assert limited[0].error_class == "output_too_large"
    body = check_outcome(limited[0])
    assert body is not None and body["payload"].encode() == raw
    assert len(classify_message(raw, Source("raw"), CoreOptions(max_output_bytes=size))) == 40


def test_the_issues_hostile_envelopes_stay_small() -> None:
    for row in (b"0", b"{}"):
        raw = b'{"records":[' + b",".join([row] * 100_000) + b"]}"
        outcomes = classify_message(raw, Source("raw"))
        assert len(outcomes) == 1 and isinstance(outcomes[0], DeadLetter)
        assert outcomes[0].error_class == "too_many_records"
