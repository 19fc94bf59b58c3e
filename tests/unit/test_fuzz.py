"""Structure-aware fuzzing of the core's entry point, ``worker.classify.core.classify_message``.

Where ``test_properties.py`` feeds plain random bytes and random JSON, this module starts from
*real* messages (every shape ``worker.dev.samples`` generates, readable and unreadable) and mutates
them the way broken producers, truncating proxies and hostile senders do:

* byte level: flips, truncation, insertion of tokens that matter to a JSON parser or a UTF-8
  decoder, splicing the head of one message onto the tail of another;
* JSON level: a node anywhere in the document (including inside a diagnostic-log row whose
  ``properties`` is itself a JSON string) replaced by another type, a huge or odd number, an
  HRESULT-like string, a deep nest; keys dropped or renamed; duplicate keys written on the wire.

For every input: ``classify_message`` returns (never raises), returns at least one outcome, every
outcome's JSON validates against the checked-in schemas (``tests.helpers.check_outcome``), and
no outcome is an ``internal_error`` dead letter (which would mean the core caught its own bug).

Budget: ``FUZZ_EXAMPLES`` (environment) is hypothesis' ``max_examples`` for each fuzz test here;
the default (800) keeps the module around 10-20 s in CI. A longer hunt on demand::

    FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/unit/test_fuzz.py -q

Failures print the shrunk input and the seed to reproduce it (``--hypothesis-seed=N``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import check_outcome
from worker.classify.core import (
    Classified,
    CoreOptions,
    DeadLetter,
    Outcome,
    Skipped,
    Source,
    classify_message,
)
from worker.dev.samples import generate

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "800"))
SOURCE = Source("fuzz", 4, 99)
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example])

# Real messages of every shape: a fixed, reproducible corpus (bad_ratio raised so that every
# unreadable shape is represented, tombstones excluded: None has no bytes to mutate).
CORPUS: tuple[bytes, ...] = tuple(
    m.value for m in generate(400, seed=2024, bad_ratio=0.15) if m.value)
assert len(CORPUS) > 300

# Byte sequences that change how a JSON parser or UTF-8 decoder reads what follows.
TOKENS = (b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b"\x00", b"\xff", b"\xc3",
          b"\xed\xa0\x80", b"\xef\xbb\xbf", b"\\u0000", b"\\ud800", b"\\", b"NaN", b"-",
          b"1e999", b"\n", b"null", b"true", b"[" * 2000, b'{"a":' * 600)
# Values a hostile or buggy sender puts where a string or object is expected.
ODD_SCALARS = st.sampled_from([
    None, True, False, 0, -1, 12, 11.5, -0.0, 2**63 - 1, -(2**63), 2**64 - 1, 1e308, -1e308,
    5e-324, "", " ", "\x00", "\u202e", "\ud7ff", "\U0010ffff", "0x80180018", "0X8018001", "80180018",
    "-2145910760", "2149056536", "4294967296", "UserNotLicensed", "userValidation", "USER_VALIDATION",
    "Not Applicable", "Not Available", "Success", "Enrollment", "unknownFutureValue", "NaN",
    "a@b.example", "{", "{}", '{"FailureCategory": 4}', "[]", "x" * 5000,
    "MENROLL_E_USERLICENSE 0x80180018 DeviceCap " * 20])
KEY_NAMES = st.sampled_from([
    "failureCategory", "FailureCategory", "failureReason", "FailureReason", "properties",
    "Properties", "records", "value", "resultType", "operationName", "id", "MessageId", "Os",
    "operatingSystem", "enrollmentType", "EnrollmentType", "managedDeviceIdentifier", "deviceId",
    "IntuneDeviceId", "AADDeviceId", "userPrincipalName", "@odata.context", "@odata.type",
    "eventDateTime", "time", "troubleshootingErrorDetails", "", "\x00", "é"])
SMALL_JSON = st.recursive(
    ODD_SCALARS | st.text(max_size=20) | st.integers() | st.floats(allow_nan=False,
                                                                   allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEY_NAMES, inner, max_size=3),
    max_leaves=8)


# ------------------------------------------------------------------ byte-level mutations
@st.composite
def byte_mutants(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "splice", "dup"]))
        n = len(data)
        at = draw(st.integers(0, max(n - 1, 0)))
        if kind == "flip" and n:
            data[at] ^= draw(st.sampled_from([0x01, 0x20, 0x40, 0x80, 0xFF]))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.sampled_from(TOKENS) | st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif kind == "splice":
            other = draw(st.sampled_from(CORPUS))
            data[at:] = other[draw(st.integers(0, max(len(other) - 1, 0))):]
        elif kind == "dup" and n:
            data[at:at] = data[at:at + draw(st.integers(1, 200))]
    return bytes(data)


# ------------------------------------------------------------------ JSON-level mutations
def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every node's path; a string holding JSON (a log row's properties) counts as a node."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    _get(doc, path[:-1])[path[-1]] = value
    return doc


NEST = "\x00nest\x00"  # placeholder for a deep nest, spliced into the encoded bytes
NEST_WIRE = b'"\\u0000nest\\u0000"'  # how every encoder used here writes NEST


def _nested(depth: int) -> bytes:
    """``depth`` alternating objects and arrays, written directly (encoders refuse depth)."""
    opened = b"".join(b"[" if i % 2 else b'{"properties":' for i in range(depth))
    closed = b"".join(b"]" if i % 2 else b"}" for i in reversed(range(depth)))
    return opened + b"null" + closed


@st.composite
def json_mutants(draw: st.DrawFn) -> bytes:
    raw = draw(st.sampled_from(CORPUS))
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw  # an unreadable sample: the byte-level fuzzer covers it
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        node = _get(doc, path)
        # A log row's properties as a JSON string: mutate inside it, then re-encode.
        if isinstance(node, str) and node.startswith("{") and draw(st.booleans()):
            try:
                inner = orjson.loads(node)
                inner_path = draw(st.sampled_from(_paths(inner)))
                inner = _set(inner, inner_path, draw(SMALL_JSON))
                doc = _set(doc, path, orjson.dumps(inner).decode())
                continue
            except (orjson.JSONDecodeError, TypeError):
                pass
        op = draw(st.sampled_from(["replace", "drop", "rename", "wrap", "nest", "clone"]))
        if op == "replace":
            doc = _set(doc, path, draw(SMALL_JSON))
        elif op == "drop" and path:
            parent = _get(doc, path[:-1])
            del parent[path[-1]]
        elif op == "rename" and path and isinstance(_get(doc, path[:-1]), dict):
            parent = _get(doc, path[:-1])
            parent[draw(KEY_NAMES)] = parent.pop(path[-1])
        elif op == "wrap":
            doc = _set(doc, path, [node] if draw(st.booleans()) else {"value": [node]})
        elif op == "nest":
            doc = _set(doc, path, NEST)
        elif op == "clone" and isinstance(node, list) and node:
            node.extend(node[:draw(st.integers(1, 50))])
    encode: Callable[[Any], bytes] = draw(st.sampled_from([
        orjson.dumps,
        lambda d: json.dumps(d, ensure_ascii=True).encode(),  # \\u escapes everywhere
        lambda d: json.dumps(d, ensure_ascii=False, indent=1).encode("utf-8", "surrogatepass"),
    ]))
    try:
        out = encode(doc)
    except (TypeError, orjson.JSONEncodeError):  # orjson: integers beyond 64 bits
        out = json.dumps(doc).encode()
    if NEST_WIRE in out:
        out = out.replace(NEST_WIRE, _nested(draw(st.sampled_from([10, 300, 1100, 5000]))), 1)
    if isinstance(doc, dict) and doc and draw(st.booleans()):
        # Duplicate keys on the wire: the first key written again with another value.
        first = next(iter(doc))
        out = out[:1] + json.dumps({first: draw(SMALL_JSON)}).encode()[1:-1] + b"," + out[1:]
    return out


# ------------------------------------------------------------------ the oracle
DEFAULTS = CoreOptions()


def _check(value: bytes | None, options: CoreOptions = DEFAULTS) -> list[Outcome]:
    outcomes = classify_message(value, SOURCE, options)
    assert outcomes, "every message yields at least one outcome"
    for o in outcomes:
        assert isinstance(o, Classified | DeadLetter | Skipped), o
        doc = check_outcome(o)
        if isinstance(o, DeadLetter):
            assert o.error_class != "internal_error", o.message
            assert doc is not None and doc["source"]["offset"] == SOURCE.offset
    return outcomes


@FUZZ
@given(byte_mutants())
def test_byte_mutated_samples(value: bytes) -> None:
    _check(value)


@FUZZ
@given(json_mutants())
def test_json_mutated_samples(value: bytes) -> None:
    first = _check(value)
    assert classify_message(value, SOURCE) == first, "classification is deterministic"


@FUZZ
@given(st.one_of(byte_mutants(), json_mutants()),
       st.integers(1024, 4096), st.integers(0, 2048), st.booleans())
def test_mutants_under_tight_limits_and_pseudonymisation(value: bytes, max_bytes: int,
                                                         max_payload: int, hmac: bool) -> None:
    """Small message and dead-letter limits put the too_large and truncation paths under fuzz."""
    options = CoreOptions(max_message_bytes=max_bytes, max_dead_letter_payload=max_payload,
                          pseudonymize_key=b"fuzz-key" if hmac else None)
    outcomes = _check(value, options)
    for o in outcomes:
        if isinstance(o, DeadLetter):
            doc = orjson.loads(o.value)
            assert doc["payloadTruncated"] == (doc["payloadBytes"] > max_payload)


@FUZZ
@given(st.lists(st.one_of(byte_mutants(), json_mutants()), min_size=1, max_size=5))
def test_mutated_rows_in_an_envelope_fail_alone(rows: list[bytes]) -> None:
    """Mutants as rows of an Event Hubs envelope: one outcome per row, in order."""
    parsed: list[Any] = []
    for raw in rows:
        try:
            parsed.append(orjson.loads(raw))
        except orjson.JSONDecodeError:
            parsed.append(raw.decode("utf-8", "replace"))  # a corrupted row: a JSON string
    try:
        value = orjson.dumps({"records": parsed})
    except orjson.JSONEncodeError:
        return  # a mutant nested beyond the encoder: not representable as a row
    outcomes = _check(value)
    assert len(outcomes) == len(parsed)
    for i, o in enumerate(outcomes):
        if isinstance(o, DeadLetter | Skipped):
            assert o.index == i
        else:
            assert orjson.loads(o.value)["source"]["recordIndex"] == i


# librdkafka's default producer message.max.bytes: a larger record is refused at produce().
PRODUCER_DEFAULT_MAX = 1_000_000


@pytest.mark.parametrize("value", [b"\x01" * 300_000, b'"' * 900_000, b"\\" * 900_000],
                         ids=["control-chars", "quotes", "backslashes"])
def test_a_dead_letter_fits_the_default_producer_message_size(value: bytes) -> None:
    (outcome,) = _check(value)
    assert isinstance(outcome, DeadLetter)
    assert len(outcome.value) <= PRODUCER_DEFAULT_MAX, len(outcome.value)
