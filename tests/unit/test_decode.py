"""Every class of unreadable input becomes a dead letter with the original bytes."""

from __future__ import annotations

import base64
import hashlib

import orjson
import pytest

from tests.helpers import check_outcome, classify
from worker.classify.core import CoreOptions, DeadLetter, Source, classify_message

CASES = [
    (None, "empty"),
    (b"", "empty"),
    (b"not json at all", "not_json"),
    (b'{"failureCategory": "authentication"', "not_json"),
    (b"\xff\xfe\x00garbage", "not_utf8"),
    (b'{"failureReason": "\xc3\x28"}', "not_utf8"),
    (b"[" * 5000 + b"]" * 5000, "too_deep"),
    (b"[1, 2]", "not_object"),
    (b'"text"', "not_object"),
    (b"42", "not_object"),
    (b"null", "not_object"),
    (b'{"failureCategory": {"nested": 1}}', "wrong_type"),
    (b'{"failureCategory": ["a"]}', "wrong_type"),
    (b'{"failureCategory": true}', "wrong_type"),
    (b'{"failureReason": {"x": 1}}', "wrong_type"),
    (b'{"properties": 5}', "wrong_type"),
    (b'{"properties": "{not json"}', "bad_nested_json"),
    (b'{"a": 1e400}', "not_json"),
]


@pytest.mark.parametrize(("raw", "error_class"), CASES)
def test_unreadable_input_is_dead_lettered(raw: bytes | None, error_class: str) -> None:
    (outcome,) = classify(raw)
    assert isinstance(outcome, DeadLetter)
    doc = check_outcome(outcome)
    assert doc is not None
    assert doc["errorClass"] == error_class
    assert doc["errorMessage"]
    assert doc["source"] == {"topic": "raw", "partition": 3, "offset": 17, "recordIndex": None}
    if raw is None:
        assert doc["payload"] is None and doc["payloadEncoding"] == "none"
    elif doc["payloadScope"] == "message":
        original = (base64.b64decode(doc["payload"]) if doc["payloadEncoding"] == "base64"
                    else doc["payload"].encode())
        assert original == raw
        assert doc["payloadSha256"] == hashlib.sha256(raw).hexdigest()


def test_too_large_is_dead_lettered_with_a_bounded_payload() -> None:
    raw = orjson.dumps({"failureReason": "x" * 5000})
    options = CoreOptions(max_message_bytes=2048, max_dead_letter_payload=1000)
    (outcome,) = classify_message(raw, Source("t"), options)
    doc = check_outcome(outcome)
    assert doc is not None and doc["errorClass"] == "too_large"
    assert doc["payloadTruncated"] is True and doc["payloadBytes"] == len(raw)
    assert doc["payload"] == raw[:1000].decode()
    assert doc["payloadSha256"] == hashlib.sha256(raw).hexdigest()


def test_byte_order_mark_is_tolerated() -> None:
    (outcome,) = classify(b"\xef\xbb\xbf" + orjson.dumps({"failureCategory": "badRequest"}))
    assert not isinstance(outcome, DeadLetter)


def test_duplicate_keys_take_the_last_value() -> None:
    (outcome,) = classify(b'{"failureCategory": "authentication", "failureCategory": 9}')
    doc = check_outcome(outcome)
    assert doc is not None and doc["failureCategory"] == "enrollmentRestrictionsEnforced"


def test_dead_letter_ids_are_deterministic_per_source() -> None:
    a = classify_message(b"bad", Source("t", 0, 1))[0]
    b = classify_message(b"bad", Source("t", 0, 1))[0]
    c = classify_message(b"bad", Source("t", 0, 2))[0]
    assert a.value == b.value  # type: ignore[union-attr]
    assert orjson.loads(a.value)["id"] != orjson.loads(c.value)["id"]  # type: ignore[union-attr]
