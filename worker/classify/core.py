"""The shell's one entry point: raw message bytes in, encoded outcomes out.

``classify_message`` decodes a Kafka message value, decides each record's failure reason
(:mod:`worker.classify.normalize`), attaches remediation and returns a closed union of outcomes,
each already encoded to bytes: :class:`Classified`, :class:`DeadLetter` or
:class:`Skipped`. It never raises, whatever the bytes, and does no I/O: the stream worker
and the ``classify`` CLI both publish what it returns.

Output ids identify events: the source's own id; else a hash of the fields that identify an
event (its time with a device, user or correlation id); else a hash of the source coordinates
(topic, partition, offset, record index), which a replay of the same input reproduces. Content
alone never makes an id, so distinct events with equal content keep distinct ids.

Work per message is bounded: more than ``max_records`` rows, or outputs adding up to more than
``max_output_bytes``, dead-letter the whole message once instead.

Each outcome also carries what the shell's metrics need and only the core can read: the detail
reason's name, the input shape as a closed label, and the record's own event time as Unix
seconds (:func:`event_epoch`; None when absent or unreadable). The core never reads a clock:
how old an event is, and whether it is fresh, is the shell's decision.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson

from worker._version import __version__
from worker.classify import catalog, remedy, verdict
from worker.classify.catalog import Detail, Hint, fold
from worker.classify.decode import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_MAX_RECORDS,
    ErrorClass,
    RawRecord,
    Rejection,
    decode_message,
)
from worker.classify.event_time import event_epoch
from worker.classify.memo import Memo
from worker.classify.normalize import Classification, Skip, normalize_failure
from worker.classify.remedy import unknown_hints
from worker.classify.taxonomy import Evidence, FailureCategory
from worker.classify.verdict import SkipReason

CLASSIFIER_VERSION: Final = __version__
SCHEMA_VERSION: Final = 1
MAX_FIELD_CHARS: Final = 256
DEFAULT_MAX_DEAD_LETTER_PAYLOAD: Final = 512 * 1024
DEFAULT_MAX_OUTPUT_BYTES: Final = 16 * 1024 * 1024
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
NO_DETAIL: Final = "none"  # the detail_reason of an outcome without a detail reason
# Input shapes as a closed set of metric labels; a shape without an entry here is "other".
# Graph's Autopilot and other event types, ESP log rows and report exports are named ahead of
# decode knowing them (issue 12), so the label set does not change when it does.
SHAPE_LABELS: Final = ("graph", "log_row", "flat", "export_row", "other")
SHAPE_LABEL_OF: Final[dict[str, str]] = {
    "graphEvent": "graph", "autopilotEvent": "graph", "otherEvent": "graph",
    "diagnosticLog": "log_row", "espLog": "log_row", "reportExport": "export_row",
    "flat": "flat"}


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
    max_records: int = DEFAULT_MAX_RECORDS  # rows per envelope or page
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES  # encoded outputs of one message
    pseudonymize_key: bytes | None = None  # HMAC key; None leaves identifiers as they are


# init=False with __init__ written out: mypyc compiles it to a native constructor, where the
# generated one runs as interpreted Python (~0.3 us per event for ten fields).
@dataclass(slots=True, init=False)
class Classified:
    value: bytes  # the encoded ClassifiedEvent
    key: bytes | None  # device id (else event id): keeps one device's events in order
    event_id: str
    category: FailureCategory
    evidence: Evidence
    os_label: str  # closed set for metrics: a known OS, "unknown" or "other"
    enrollment_type_label: str
    detail_reason: str  # the detail reason's catalog name, or NO_DETAIL
    event_time: float | None  # the record's own event time, Unix seconds
    shape_label: str  # one of SHAPE_LABELS

    # The generated signature, written out (positional, as the core calls it).
    def __init__(self, value: bytes, key: bytes | None, event_id: str,  # noqa: PLR0917
                 category: FailureCategory, evidence: Evidence, os_label: str,
                 enrollment_type_label: str, detail_reason: str, event_time: float | None,
                 shape_label: str) -> None:
        self.value, self.key, self.event_id = value, key, event_id
        self.category, self.evidence, self.os_label = category, evidence, os_label
        self.enrollment_type_label, self.detail_reason = enrollment_type_label, detail_reason
        self.event_time, self.shape_label = event_time, shape_label


@dataclass(slots=True)  # not frozen: frozen __init__ costs ~1 us per event
class DeadLetter:
    value: bytes  # the encoded DeadLetterRecord
    error_class: ErrorClass | Literal["internal_error"]
    message: str
    index: int | None


SkipKind = SkipReason | Literal["empty_batch"]


@dataclass(slots=True, init=False)  # __init__ written out: see Classified
class Skipped:
    """A record read but not published: no failure (``verdict.SKIP_REASONS``), or an
    envelope with no records at all (``empty_batch``, index None: no record was read)."""

    reason: SkipKind
    index: int | None
    # The Graph event type for records that named one (catalog.EVENT_TYPE_LABELS, a closed
    # set), the export report name for report rows; None otherwise.
    event_type: str | None
    # Measurements for the metrics, as in Classified; not part of what the outcome is.
    event_time: float | None = field(compare=False)
    shape_label: str = field(compare=False)

    def __init__(self, reason: SkipKind, index: int | None, event_type: str | None = None, *,
                 event_time: float | None = None, shape_label: str = "other") -> None:
        self.reason, self.index, self.event_type = reason, index, event_type
        self.event_time, self.shape_label = event_time, shape_label


Outcome = Classified | DeadLetter | Skipped


def classify_message(value: bytes | None, source: Source,
                     options: CoreOptions = CoreOptions()) -> list[Outcome]:
    """Classify every record in one message. Never raises; never returns an empty list."""
    try:
        decoded = decode_message(value, max_bytes=options.max_message_bytes,
                                 max_records=options.max_records)
        if isinstance(decoded, Rejection):
            return [_dead_letter(decoded, value, source, options)]
        if not decoded:
            return [Skipped("empty_batch", None)]
        outcomes: list[Outcome] = []
        size, limit = 0, options.max_output_bytes
        for item in decoded:
            outcome = _outcome(item, value, source, options)
            if type(outcome) is not Skipped:
                size += len(outcome.value)  # type: ignore[union-attr]
                if size > limit:
                    return [_dead_letter(Rejection(
                        "output_too_large", f"its outputs exceed {limit} bytes (after "
                        f"{len(outcomes)} of {len(decoded)} records)"), value, source, options)]
            outcomes.append(outcome)
        return outcomes
    except Exception as exc:
        bug = Rejection("not_json", f"internal error: {type(exc).__name__}: {exc}"[:300])
        return [_dead_letter(bug, value, source, options, error_class="internal_error")]


def _outcome(item: RawRecord | Rejection, value: bytes | None, source: Source,
             options: CoreOptions) -> Outcome:
    if isinstance(item, Rejection):
        return _dead_letter(item, value, source, options)
    if item.shape == "otherEvent":  # its type says it is no enrollment: nothing to read
        return _skipped("not_enrollment", item)
    result = normalize_failure(item)
    if isinstance(result, Classification):  # the common case first: this runs per event
        return _classified(item, result, value, source, options)
    if isinstance(result, Skip):
        return _skipped(result.reason, item)
    return _dead_letter(result, value, source, options)


def _skipped(reason: SkipReason, record: RawRecord) -> Skipped:
    return Skipped(reason, record.index, record.event_type,
                   event_time=event_epoch(_event_time_text(record)),
                   shape_label=SHAPE_LABEL_OF.get(record.shape, "other"))


def _classified(record: RawRecord, c: Classification, value: bytes | None, source: Source,
                options: CoreOptions) -> Classified:
    f = _read_fields(record)
    key = options.pseudonymize_key
    os_name, os_label = _operating_system(f["operatingSystem"])
    enrollment_type, et_label = _enrollment_type(f["enrollmentType"])
    intune_device, entra_device = f["intuneDeviceId"], f["entraDeviceId"]
    user_id, upn = f["userId"], f["userPrincipalName"]
    microsoft = remedy.microsoft_hint(record) if record.shape in _HINT_SHAPES else None
    raw_reason = c.raw_reason
    if key is None:
        if microsoft is None:
            head = _DECISION_HEADS.get(c)
            if head is None:
                head = _DECISION_HEADS.put(c, _decision_json(c))
        else:
            hint_key = (c, microsoft)
            head = _HINTED_HEADS.get(hint_key)
            if head is None:
                head = _HINTED_HEADS.put(hint_key, _with_microsoft_hint(c, c.raw_reason,
                                                                        microsoft))
    else:
        intune_device, entra_device, user_id, upn = (
            _pseudonym(key, v) for v in (intune_device, entra_device, user_id, upn))
        raw_reason = raw_reason and _EMAIL.sub(
            lambda m: _pseudonym(key, m.group()) or "", raw_reason)
        head = (_decision_json(c, raw_reason) if microsoft is None
                else _with_microsoft_hint(c, raw_reason, microsoft))
    event_id, id_source = ((f["id"], "event") if f["id"] else _derived_id(
        f["eventTime"], (intune_device, entra_device, user_id, upn, f["correlationId"]),
        raw_reason, source, record.index))
    rest = {
        "id": event_id,
        "idSource": id_source,
        "eventTime": f["eventTime"],
        "device": {"intuneDeviceId": intune_device, "entraDeviceId": entra_device,
                   "operatingSystem": os_name, "osVersion": f["osVersion"]},
        "user": {"userId": user_id, "userPrincipalName": upn},
        "enrollment": {"enrollmentType": enrollment_type, "tenantId": f["tenantId"],
                       "correlationId": f["correlationId"]},
        "deployment": _deployment_json(record) if record.shape in _DEPLOYMENT_SHAPES else None,
        "source": {"shape": record.shape, "topic": source.topic, "partition": source.partition,
                   "offset": source.offset, "recordIndex": record.index},
    }
    # The decision's half of the object is the same for every event with the same
    # Classification, so it is encoded once and spliced in: head is '{...,' and rest '{...}'.
    encoded = head + orjson.dumps(rest)[1:]
    partition_key = intune_device or entra_device or event_id
    detail = c.detail
    return Classified(encoded, partition_key.encode(), event_id, c.category, c.evidence,
                      os_label, et_label, detail.name if detail else NO_DETAIL,
                      event_epoch(f["eventTime"]), SHAPE_LABEL_OF.get(record.shape, "other"))


_HINT_SHAPES = remedy.HINT_SHAPES
_SHAPE_DEFAULTS = catalog.SHAPE_DEFAULTS
# Envelope rows are most of a stream and have no defaults: one comparison answers for them.
_COMMON_SHAPE: Final = "diagnosticLog"
_DEPLOYMENT_SHAPES = frozenset(("autopilotEvent", "espLog"))
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


# Classifications come from decide()'s memo (identity hash), so a head is encoded once.
_DECISION_HEADS: Final[Memo[Classification, bytes]] = Memo(4096)


def _decision_json(c: Classification, raw_reason: str | None = None) -> bytes:
    """The decision's fields of a ClassifiedEvent as an unterminated JSON object: '{...,'."""
    head = orjson.dumps(_decision_dict(c, raw_reason, _our_remediation(c, raw_reason)))
    return head[:-1] + b","


_HINTED_HEADS: Final[Memo[tuple[Classification, remedy.MicrosoftHint], bytes]] = Memo(1024)


def _with_microsoft_hint(c: Classification, raw_reason: str | None,
                         microsoft: remedy.MicrosoftHint) -> bytes:
    """The decision's fields with Microsoft's own remediation ahead of ours."""
    ours = (unknown_hints(raw_reason or c.raw_reason) if _unnamed(c)
            else _our_hints(c.category, c.detail))
    head = orjson.dumps(_decision_dict(c, raw_reason, [microsoft.as_json(), *ours]))
    return head[:-1] + b","


def _decision_dict(c: Classification, raw_reason: str | None, remediation: Any
                   ) -> dict[str, Any]:
    category, detail = c.category, c.detail
    name, code, text = _CATEGORY_FACTS[category]
    return {
        "schemaVersion": SCHEMA_VERSION,
        "failureCategory": name,
        "failureCategoryCode": code,
        "failureCategoryDescription": text,
        "detailReason": detail.name if detail else None,
        "detailReasonDescription": detail.description if detail else None,
        "classification": _classification_dict(c, raw_reason or c.raw_reason),
        "remediation": remediation,
    }


def _deployment_json(record: RawRecord) -> dict[str, Any] | None:
    facts = verdict.deployment(record)
    if facts is None:
        return None
    return {"phase": facts.phase, "state": facts.state, "autopilotProfile": facts.profile,
            "espProfile": facts.esp_profile, "isAutopilot": facts.is_autopilot,
            "userReachedDesktop": facts.user_reached_desktop}


def _read_fields(record: RawRecord) -> dict[str, str | None]:
    """Each output field from its first present source key; scalars only, bounded length."""
    fields, row = record.fields, record.row
    out: dict[str, str | None] = {}
    # Graph events and log rows name each field once: skip the inner loop (it is per field,
    # per event, and the hottest Python code in the worker).
    single, limit = _SINGLE_KEY[record.shape], MAX_FIELD_CHARS
    for name, keys in _FIELD_PLAN[record.shape]:
        if single:
            value: Any = fields.get(keys[0])
        else:
            value = None
            for k in keys:
                value = fields.get(k)
                if value is not None:
                    break
        cls = type(value)
        if cls is str:
            out[name] = value[:limit] or None
        elif cls is int or cls is float:
            out[name] = str(value)
        else:  # None, or a nested object/list: not a scalar we can show
            out[name] = None
    defaults = _SHAPE_DEFAULTS.get(record.shape) if record.shape != _COMMON_SHAPE else None
    if defaults is not None:
        for name, default in defaults.items():
            if out[name] is None:
                out[name] = default
    if row is not fields and record.shape != "reportExport":  # a log row: some fields live
        for name, keys in _ROW_PLAN:                             # beside "properties"
            if out[name] is None:
                out[name] = next((v[:MAX_FIELD_CHARS] for k in keys
                                  if type(v := row.get(k)) is str and v), None)
    return out


def _event_time_text(record: RawRecord) -> str | None:
    """The event-time field alone, read as _read_fields reads it (for skipped records)."""
    for key in _EVENT_TIME_KEYS.get(record.shape, _GRAPH_EVENT_TIME):
        value = record.fields.get(key)
        if value is not None:
            return _scalar_text(value)
    if record.row is not record.fields:
        for key in catalog.LOG_ROW_FIELDS["eventTime"]:
            value = record.row.get(key)
            if value is not None:
                return _scalar_text(value)
    return None


def _scalar_text(value: Any) -> str | None:
    cls = type(value)
    if cls is str:
        return value[:MAX_FIELD_CHARS] or None
    return str(value) if cls is int or cls is float else None


_EVENT_TIME_KEYS = {shape: plan["eventTime"] for shape, plan in catalog.FIELD_SOURCES.items()}
_GRAPH_EVENT_TIME = _EVENT_TIME_KEYS["graphEvent"]  # Graph types without a field plan of their own
def _raw_category(value: Any) -> str | int | None:
    if isinstance(value, str):
        return value[:MAX_FIELD_CHARS]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value) if float(value).is_integer() and abs(value) < 2**53 else str(value)
    return None


# Operating systems and enrollment types as (published value, metric label), remembered.
_OS_LABELS: Final[Memo[str, tuple[str | None, str]]] = Memo(512)
_ENROLLMENT_TYPE_LABELS: Final[Memo[str, tuple[str | None, str]]] = Memo(512)


def _operating_system(raw: str | None) -> tuple[str | None, str]:
    return _closed_label(raw, catalog.OPERATING_SYSTEMS, _OS_LABELS)


def _enrollment_type(raw: str | None) -> tuple[str | None, str]:
    return _closed_label(raw, catalog.ENROLLMENT_TYPE_BY_FOLDED, _ENROLLMENT_TYPE_LABELS)


def _closed_label(raw: str | None, canonical_by_folded: dict[str, str],
                  memo: Memo[str, tuple[str | None, str]]) -> tuple[str | None, str]:
    """A field's published value and its metric label from a closed set: the canonical name
    of a known value, else the value as sent and ``other``; ``unknown`` when absent."""
    if raw is None:
        return None, "unknown"
    found = memo.get(raw)
    if found is None:
        canonical = canonical_by_folded.get(fold(raw))
        found = memo.put(raw, (canonical, canonical) if canonical else (raw, "other"))
    return found


# Enum attribute access is slow in CPython 3.11; these never change.
_CATEGORY_FACTS = {c: (c.name, int(c), c.description) for c in FailureCategory}


def _hint_json(hint: Hint, scope: str) -> dict[str, Any]:
    return {"scope": scope, "summary": hint.summary, "steps": list(hint.steps),
            "docUrl": hint.doc}


# Remediation never changes per event, so it is serialised once and embedded as is.
_CATEGORY_HINTS = {c: _hint_json(catalog.CATEGORY_HINTS[c], "category") for c in FailureCategory}
_HINT_LISTS: dict[tuple[FailureCategory, str | None], list[dict[str, Any]]] = {
    (c, None): [_CATEGORY_HINTS[c]] for c in FailureCategory}
_HINT_LISTS |= {
    (d.category, d.name): [_hint_json(d.hint, "detailReason"), _CATEGORY_HINTS[d.category]]
    for d in catalog.DETAILS}
_HINT_LISTS |= {
    (c, d.name): [_hint_json(d.hint, "detailReason"), _CATEGORY_HINTS[c]]
    for d in catalog.DETAILS for c in d.also}
_REMEDIATION: dict[tuple[FailureCategory, str | None], orjson.Fragment] = {
    key: orjson.Fragment(orjson.dumps(hints)) for key, hints in _HINT_LISTS.items()}


def _our_remediation(c: Classification, raw_reason: str | None
                     ) -> orjson.Fragment | list[dict[str, Any]]:
    """An unnamed failure gets a hint quoting what was seen; every other one a fixed hint."""
    if _unnamed(c):
        return unknown_hints(raw_reason or c.raw_reason)
    return _remediation(c.category, c.detail)


def _unnamed(c: Classification) -> bool:
    return c.detail is None and c.category is FailureCategory.unknown


def _remediation(category: FailureCategory, detail: Detail | None) -> orjson.Fragment:
    return _REMEDIATION[(category, detail.name if detail else None)]


def _our_hints(category: FailureCategory, detail: Detail | None) -> list[dict[str, Any]]:
    return _HINT_LISTS[(category, detail.name if detail else None)]


def _derived_id(event_time: str | None, who: tuple[str | None, ...], reason: str | None,
                source: Source, index: int | None) -> tuple[str, Literal["fields", "source"]]:
    """An id for a record without its own: from what identifies the event, else from where
    it was read. ``who`` and ``reason`` are as published (pseudonyms when pseudonymising), so
    the id reveals nothing the output does not."""
    if event_time and any(who):
        parts = ("fields", event_time, *(w or "" for w in who), reason or "")
        id_source: Literal["fields", "source"] = "fields"
    else:
        parts = ("source", source.topic, str(source.partition), str(source.offset), str(index))
        id_source = "source"
    material = orjson.dumps(parts)  # a JSON array: ("ab", "c") and ("a", "bc") differ
    return _uuid_text(hashlib.blake2b(material, digest_size=16).hexdigest()), id_source


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
