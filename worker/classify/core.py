"""The shell's one entry point: raw message bytes in, encoded outcomes out.

``classify_message`` decodes a Kafka message value, decides each record's failure reason
(:mod:`worker.classify.normalize`), attaches remediation and returns a closed union of outcomes,
each already encoded to bytes: :class:`Classified`, :class:`DeadLetter` or
:class:`Skipped`. It never raises, whatever the bytes, and does no I/O: the stream worker
and the ``classify`` CLI both publish what it returns.

Output ids are deterministic (the source's own id, else a hash of the record), so a replay
yields the same ids and downstream consumers can drop duplicates.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Literal

import orjson

from worker._version import __version__
from worker.classify import catalog
from worker.classify.catalog import Detail, Hint, fold
from worker.classify.decode import (
    DEFAULT_MAX_MESSAGE_BYTES,
    ErrorClass,
    RawRecord,
    Rejection,
    decode_message,
)
from worker.classify.normalize import Classification, Skip, normalize_failure
from worker.classify.remedy import unknown_hints
from worker.classify.taxonomy import Evidence, FailureCategory

CLASSIFIER_VERSION: Final = __version__
SCHEMA_VERSION: Final = 1
MAX_FIELD_CHARS: Final = 256
DEFAULT_MAX_DEAD_LETTER_PAYLOAD: Final = 512 * 1024
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


@dataclass(frozen=True, slots=True)
class Source:
    """Where a message came from; ``topic`` is a file name for the CLI."""

    topic: str
    partition: int = 0
    offset: int = 0


@dataclass(frozen=True, slots=True)
class CoreOptions:
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_dead_letter_payload: int = DEFAULT_MAX_DEAD_LETTER_PAYLOAD
    pseudonymize_key: bytes | None = None  # HMAC key; None leaves identifiers as they are


@dataclass(slots=True)  # not frozen: frozen __init__ costs ~1 us per event
class Classified:
    value: bytes  # the encoded ClassifiedEvent
    key: bytes | None  # device id (else event id): keeps one device's events in order
    event_id: str
    category: FailureCategory
    evidence: Evidence
    os_label: str  # closed set for metrics: a known OS, "unknown" or "other"
    enrollment_type_label: str


@dataclass(slots=True)  # not frozen: frozen __init__ costs ~1 us per event
class DeadLetter:
    value: bytes  # the encoded DeadLetterRecord
    error_class: ErrorClass | Literal["internal_error"]
    message: str
    index: int | None


@dataclass(slots=True)  # not frozen: frozen __init__ costs ~1 us per event
class Skipped:
    reason: Literal["success", "not_enrollment", "empty_batch"]
    index: int | None


Outcome = Classified | DeadLetter | Skipped


def classify_message(value: bytes | None, source: Source,
                     options: CoreOptions = CoreOptions()) -> list[Outcome]:
    """Classify every record in one message. Never raises; never returns an empty list."""
    try:
        decoded = decode_message(value, max_bytes=options.max_message_bytes)
        if isinstance(decoded, Rejection):
            return [_dead_letter(decoded, value, source, options)]
        if not decoded:
            return [Skipped("empty_batch", None)]
        return [_outcome(item, value, source, options) for item in decoded]
    except Exception as exc:
        bug = Rejection("not_json", f"internal error: {type(exc).__name__}: {exc}"[:300])
        return [_dead_letter(bug, value, source, options, error_class="internal_error")]


def _outcome(item: RawRecord | Rejection, value: bytes | None, source: Source,
             options: CoreOptions) -> Outcome:
    if isinstance(item, Rejection):
        return _dead_letter(item, value, source, options)
    result = normalize_failure(item)
    if isinstance(result, Classification):  # the common case first: this runs per event
        return _classified(item, result, value, source, options)
    if isinstance(result, Skip):
        return Skipped(result.reason, item.index)
    return _dead_letter(result, value, source, options)


def _classified(record: RawRecord, c: Classification, value: bytes | None, source: Source,
                options: CoreOptions) -> Classified:
    f = _read_fields(record)
    key = options.pseudonymize_key
    event_id, id_source = (f["id"], "event") if f["id"] else (_derived_id(record, value), "derived")
    os_name, os_label = _operating_system(f["operatingSystem"])
    enrollment_type, et_label = _enrollment_type(f["enrollmentType"])
    intune_device, entra_device = f["intuneDeviceId"], f["entraDeviceId"]
    user_id, upn = f["userId"], f["userPrincipalName"]
    if key is None:
        head = _decision_json(c)
    else:
        intune_device, entra_device, user_id, upn = (
            _pseudonym(key, v) for v in (intune_device, entra_device, user_id, upn))
        raw_reason = c.raw_reason and _EMAIL.sub(
            lambda m: _pseudonym(key, m.group()) or "", c.raw_reason)
        head = _decision_json.__wrapped__(c, raw_reason)
    rest = {
        "id": event_id,
        "idSource": id_source,
        "eventTime": f["eventTime"],
        "device": {"intuneDeviceId": intune_device, "entraDeviceId": entra_device,
                   "operatingSystem": os_name, "osVersion": f["osVersion"]},
        "user": {"userId": user_id, "userPrincipalName": upn},
        "enrollment": {"enrollmentType": enrollment_type, "tenantId": f["tenantId"],
                       "correlationId": f["correlationId"]},
        "source": {"shape": record.shape, "topic": source.topic, "partition": source.partition,
                   "offset": source.offset, "recordIndex": record.index},
    }
    # The decision's half of the object is the same for every event with the same
    # Classification, so it is encoded once and spliced in: head is '{...,' and rest '{...}'.
    encoded = head + orjson.dumps(rest)[1:]
    partition_key = intune_device or entra_device or event_id
    return Classified(encoded, partition_key.encode(), event_id, c.category, c.evidence,
                      os_label, et_label)


_FIELD_PLAN = {shape: tuple(plan.items()) for shape, plan in catalog.FIELD_SOURCES.items()}
_ROW_PLAN = tuple(catalog.LOG_ROW_FIELDS.items())
_SINGLE_KEY = {shape: all(len(keys) == 1 for _, keys in plan)
               for shape, plan in _FIELD_PLAN.items()}


def _classification_dict(c: Classification, raw_reason: str | None) -> dict[str, Any]:
    return {
        "evidence": str(c.evidence),
        "rule": c.rule,
        "confidence": str(c.confidence),
        "matched": c.matched,
        "rawCategory": _raw_category(c.raw_category),
        "rawReason": raw_reason,
        "conflict": {"detailReason": c.conflict.name,
                     "detailCategory": c.conflict.category.name} if c.conflict else None,
        "classifierVersion": CLASSIFIER_VERSION,
    }


@lru_cache(maxsize=4096)
def _decision_json(c: Classification, raw_reason: str | None = None) -> bytes:
    """The decision's fields of a ClassifiedEvent as an unterminated JSON object: '{...,'."""
    category, detail = c.category, c.detail
    name, code, text = _CATEGORY_FACTS[category]
    head = orjson.dumps({
        "schemaVersion": SCHEMA_VERSION,
        "failureCategory": name,
        "failureCategoryCode": code,
        "failureCategoryDescription": text,
        "detailReason": detail.name if detail else None,
        "detailReasonDescription": detail.description if detail else None,
        "classification": _classification_dict(c, raw_reason or c.raw_reason),
        # An unnamed failure gets a hint quoting what was seen; every other one a fixed hint.
        "remediation": (unknown_hints(raw_reason or c.raw_reason)
                        if detail is None and category is FailureCategory.unknown
                        else _remediation(category, detail)),
    })
    return head[:-1] + b","


def _read_fields(record: RawRecord) -> dict[str, str | None]:
    """Each output field from its first present source key; scalars only, bounded length."""
    fields, row = record.fields, record.row
    fget = fields.get
    out: dict[str, str | None] = {}
    # Graph events and log rows name each field once: skip the inner loop (it is per field,
    # per event, and the hottest Python code in the worker).
    single, limit = _SINGLE_KEY[record.shape], MAX_FIELD_CHARS
    for name, keys in _FIELD_PLAN[record.shape]:
        if single:
            value: Any = fget(keys[0])
        else:
            value = None
            for k in keys:
                value = fget(k)
                if value is not None:
                    break
        cls = value.__class__
        if cls is str:
            out[name] = value[:limit] or None
        elif cls is int or cls is float:
            out[name] = str(value)
        else:  # None, or a nested object/list: not a scalar we can show
            out[name] = None
    if row is not fields:  # a log row: some fields live beside "properties"
        for name, keys in _ROW_PLAN:
            if out[name] is None:
                out[name] = next((v[:MAX_FIELD_CHARS] for k in keys
                                  if (v := row.get(k)).__class__ is str and v), None)
    return out


def _raw_category(value: Any) -> str | int | None:
    if isinstance(value, str):
        return value[:MAX_FIELD_CHARS]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value) if float(value).is_integer() and abs(value) < 2**53 else str(value)
    return None


@lru_cache(maxsize=512)
def _operating_system(raw: str | None) -> tuple[str | None, str]:
    if raw is None:
        return None, "unknown"
    canonical = catalog.OPERATING_SYSTEMS.get(fold(raw))
    return (canonical, canonical) if canonical else (raw, "other")


@lru_cache(maxsize=512)
def _enrollment_type(raw: str | None) -> tuple[str | None, str]:
    if raw is None:
        return None, "unknown"
    canonical = catalog.ENROLLMENT_TYPE_BY_FOLDED.get(fold(raw))
    return (canonical, canonical) if canonical else (raw, "other")


# Enum attribute access is slow in CPython 3.11; these never change.
_CATEGORY_FACTS = {c: (c.name, int(c), c.description) for c in FailureCategory}


def _hint_json(hint: Hint, scope: str) -> dict[str, Any]:
    return {"scope": scope, "summary": hint.summary, "steps": list(hint.steps),
            "docUrl": hint.doc}


# Remediation never changes per event, so it is serialised once and embedded as is.
_CATEGORY_HINTS = {c: _hint_json(catalog.CATEGORY_HINTS[c], "category") for c in FailureCategory}
_REMEDIATION: dict[tuple[FailureCategory, str | None], orjson.Fragment] = {
    (c, None): orjson.Fragment(orjson.dumps([_CATEGORY_HINTS[c]])) for c in FailureCategory}
_REMEDIATION |= {
    (d.category, d.name): orjson.Fragment(orjson.dumps(
        [_hint_json(d.hint, "detailReason"), _CATEGORY_HINTS[d.category]]))
    for d in catalog.DETAILS}
_REMEDIATION |= {
    (c, d.name): orjson.Fragment(orjson.dumps(
        [_hint_json(d.hint, "detailReason"), _CATEGORY_HINTS[c]]))
    for d in catalog.DETAILS for c in d.also}


def _remediation(category: FailureCategory, detail: Detail | None) -> orjson.Fragment:
    return _REMEDIATION[(category, detail.name if detail else None)]


def _derived_id(record: RawRecord, value: bytes | None) -> str:
    try:
        material = orjson.dumps(record.row, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):
        # Deeper than the encoder allows: fall back to the message bytes and the position.
        material = (value or b"") + b"\x00" + str(record.index).encode()
    return _uuid_text(hashlib.blake2b(material, digest_size=16).hexdigest())


def _uuid_text(h: str) -> str:
    """32 hex digits in the 8-4-4-4-12 form of a UUID (uuid.UUID is slow to construct)."""
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _pseudonym(key: bytes, value: str | None) -> str | None:
    if value is None:
        return None
    return "hmac:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def _dead_letter(rejection: Rejection, value: bytes | None, source: Source, options: CoreOptions,
                 error_class: ErrorClass | Literal["internal_error"] | None = None) -> DeadLetter:
    if rejection.record is not None and rejection.index is not None:
        try:
            payload = orjson.dumps(rejection.record)
            scope = "record"
        except (orjson.JSONEncodeError, TypeError):
            payload, scope = value or b"", "message"
    else:
        payload, scope = value or b"", "message"
    if options.pseudonymize_key is not None:
        payload = _EMAIL.sub(lambda m: (_pseudonym(options.pseudonymize_key or b"", m.group())
                                        or ""), payload.decode("utf-8", "replace")).encode()
    limit = options.max_dead_letter_payload
    kept = payload[:limit]
    try:
        text, encoding = kept.decode("utf-8"), "utf-8"
        # JSON escapes control characters to six bytes each, so text can encode far larger
        # than the bytes it keeps; base64 never exceeds 4/3. The dead letter must stay within
        # the producer's message size, or one bad message would stop the worker every time.
        if len(orjson.dumps(text)) > len(kept) * 4 // 3 + 8:
            text, encoding = base64.b64encode(kept).decode("ascii"), "base64"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(kept).decode("ascii"), "base64"
    digest = hashlib.sha256(payload).hexdigest()
    ident = f"{source.topic}/{source.partition}/{source.offset}/{rejection.index}/{digest}"
    record = {
        "schemaVersion": SCHEMA_VERSION,
        "id": _uuid_text(hashlib.blake2b(ident.encode(), digest_size=16).hexdigest()),
        "errorClass": error_class or rejection.error_class,
        "errorMessage": rejection.message,
        "source": {"topic": source.topic, "partition": source.partition, "offset": source.offset,
                   "recordIndex": rejection.index},
        "payloadScope": scope,
        "payload": text if value is not None else None,
        "payloadEncoding": encoding if value is not None else "none",
        "payloadBytes": len(payload),
        "payloadSha256": digest,
        "payloadTruncated": len(payload) > limit,
        "classifierVersion": CLASSIFIER_VERSION,
    }
    return DeadLetter(orjson.dumps(record), error_class or rejection.error_class,
                      rejection.message, rejection.index)
