"""Bytes to raw enrollment records, or a rejection saying why not.

Recognises the wire shapes that carry enrollment records:

* a Graph ``enrollmentTroubleshootingEvent``, alone or in a collection page ``{"value": [...]}``;
  where ``@odata.type`` is present it decides what a Graph record is (an Autopilot deployment
  event, another troubleshooting type that is no enrollment failure, ...:
  ``catalog.GRAPH_TYPE_ROLES``); without it an Autopilot event is told by its
  deployment-state fields;
* an Intune diagnostic-log row (Event Hubs / Log Analytics ``OperationalLogs``) whose
  ``properties`` is an object or a JSON string, alone or in the Azure Monitor envelope
  ``{"records": [...]}`` that diagnostic settings stream to Event Hubs; ``ESPEnrollment``
  rows are their own shape;
* a row of an enrollment report export (``EnrollmentActivity``, ``DeviceEnrollmentFailures``)
  as a JSON object, its enum columns given as codes plus ``<Column>_loc`` text;
* a minimal flat object that carries only a category and/or a reason.

Never raises on input and does no I/O: every problem becomes a :class:`Rejection` value.
A bad row inside an envelope or page is rejected alone, with its index, so its
neighbours still classify.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson

from worker.classify import catalog
from worker.classify.catalog import fold

Shape = Literal["graphEvent", "autopilotEvent", "otherEvent", "diagnosticLog", "espLog",
                "reportExport", "flat"]
ErrorClass = Literal[
    "empty", "too_large", "not_utf8", "not_json", "too_deep", "not_object", "wrong_type",
    "bad_nested_json", "too_many_records", "output_too_large",
]
ERROR_CLASSES: Final[tuple[ErrorClass, ...]] = (
    "empty", "too_large", "not_utf8", "not_json", "too_deep", "not_object", "wrong_type",
    "bad_nested_json", "too_many_records", "output_too_large",
)

DEFAULT_MAX_MESSAGE_BYTES: Final = 2 * 1024 * 1024
# A 2 MiB envelope of empty rows holds ~700,000 of them; each output costs ~2 KB. The limit
# keeps one message's work (and memory) bounded; real envelopes hold tens to hundreds.
DEFAULT_MAX_RECORDS: Final = 5000
_BOM: Final = b"\xef\xbb\xbf"
_MAX_ERROR_TEXT: Final = 300


# init=False with __init__ written out: mypyc compiles it to a native constructor, where the
# generated one runs as interpreted Python (one per record).
@dataclass(slots=True, init=False)
class RawRecord:
    """One failure-shaped record as found in the message, not yet interpreted."""

    shape: Shape
    row: dict[str, Any]  # the record itself (top-level fields such as resultType live here)
    fields: dict[str, Any]  # where the failure fields live: row["properties"] for log rows
    index: int | None  # position inside an envelope or page; None for a lone record
    # Graph event-type label (catalog.EVENT_TYPE_LABELS) when @odata.type is present; the
    # export report name for report rows; None otherwise.
    event_type: str | None

    def __init__(self, shape: Shape, row: dict[str, Any], fields: dict[str, Any],
                 index: int | None, event_type: str | None = None) -> None:
        self.shape, self.row, self.fields = shape, row, fields
        self.index, self.event_type = index, event_type


@dataclass(slots=True)  # not frozen: frozen __init__ costs ~1 us per event
class Rejection:
    """Why a message, or one record inside it, cannot be read."""

    error_class: ErrorClass
    message: str
    index: int | None = None  # position inside an envelope or page
    record: Any = None  # the offending record (already parsed) when only one record is bad


Decoded = RawRecord | Rejection


def decode_message(value: bytes | None, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                   max_records: int = DEFAULT_MAX_RECORDS) -> list[Decoded] | Rejection:
    """Parse one Kafka message value into records.

    Returns a Rejection for the whole message (also when an envelope or page holds more than
    ``max_records`` rows), or a list holding one item per record (an empty list for an empty
    envelope). Never raises.
    """
    if not value:
        return Rejection("empty", "message value is empty or null (tombstone)")
    if len(value) > max_bytes:
        return Rejection("too_large", f"message is {len(value)} bytes; the limit is {max_bytes}")
    if value.startswith(_BOM):
        value = value[len(_BOM):]
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return _json_error(value, exc)
    if not isinstance(doc, dict):
        return Rejection("not_object", f"top-level JSON is {_kind(doc)}, expected an object")
    return split_records(doc, max_records)


def split_records(doc: dict[str, Any], max_records: int = DEFAULT_MAX_RECORDS
                  ) -> list[Decoded] | Rejection:
    """Unwrap an envelope or page; otherwise the document is a single record."""
    records = doc.get("records")
    if isinstance(records, list) and _looks_like_envelope(doc):
        return _rows(records, max_records, "envelope")
    page = doc.get("value")
    if isinstance(page, list) and _looks_like_page(doc):
        return _rows(page, max_records, "page")
    return [_record(doc, None)]


def _rows(items: list[Any], max_records: int, what: str) -> list[Decoded] | Rejection:
    # Checked before any row is looked at: the whole message goes to the dead letters once.
    if len(items) > max_records:
        return Rejection("too_many_records",
                         f"{what} holds {len(items)} records; the limit is {max_records}")
    return [_record(item, i) for i, item in enumerate(items)]


def _looks_like_envelope(doc: dict[str, Any]) -> bool:
    # Azure Monitor wraps rows as {"records": [...]} with nothing else that looks like an event.
    return "failureCategory" not in doc and "properties" not in doc


def _looks_like_page(doc: dict[str, Any]) -> bool:
    return "@odata.context" in doc or "@odata.nextLink" in doc or len(doc) == 1


def _record(item: Any, index: int | None) -> Decoded:
    if type(item) is not dict:  # JSON objects decode to exactly dict
        return Rejection("not_object", f"record is {_kind(item)}, expected an object", index, item)
    props = item.get("properties")
    if props is None:
        props = item.get("Properties")
    if props is None:
        return _unwrapped_record(item, index)
    if type(props) is str:
        try:
            props = orjson.loads(props)
        except orjson.JSONDecodeError as exc:
            return Rejection("bad_nested_json", f"properties is not valid JSON: {_short(exc)}",
                             index, item)
    if type(props) is not dict:
        return Rejection("wrong_type", f"properties is {_kind(props)}, expected an object",
                         index, item)
    return RawRecord("espLog" if _is_esp(item) else "diagnosticLog", item, props, index)


def _is_esp(row: dict[str, Any]) -> bool:
    operation = row.get("operationName")
    if operation is None:
        operation = row.get("OperationName")
    # "Enrollment" is by far the most common operation: answer it without folding.
    return (type(operation) is str and operation != "Enrollment"
            and fold(operation[:64]) == _ESP_FOLDED)


_ESP_FOLDED: Final = fold(catalog.ESP_OPERATION)


def _unwrapped_record(item: dict[str, Any], index: int | None) -> Decoded:
    """A record without ``properties``: a Graph event (its type first), a report row, flat."""
    odata_type = item.get("@odata.type")
    if odata_type is not None:
        return _typed_graph_record(item, odata_type, index)
    # A report's own columns (EnrollmentActivityId, ...) are specific to exports; a Graph field
    # beside them does not make a report row an Autopilot or troubleshooting event.
    report = _export_report(item)
    if report is not None:
        return RawRecord("reportExport", item, _export_fields(item), index, report)
    if "deploymentState" in item or "deviceSetupStatus" in item:
        return RawRecord("autopilotEvent", item, item, index)
    if "managedDeviceIdentifier" in item or "eventDateTime" in item:
        return RawRecord("graphEvent", item, item, index)
    return RawRecord("flat", item, item, index)


def _typed_graph_record(item: dict[str, Any], odata_type: Any, index: int | None) -> Decoded:
    if type(odata_type) is not str:
        return Rejection("wrong_type", "@odata.type must be a string", index, item)
    key = fold(odata_type.rpartition(".")[2][:128])
    role = catalog.GRAPH_TYPE_FOLDED_ROLE.get(key)
    label = catalog.GRAPH_TYPE_BY_FOLDED.get(key, "other")
    if role == "enrollmentFailure":
        return RawRecord("graphEvent", item, item, index, label)
    if role == "autopilotDeployment":
        return RawRecord("autopilotEvent", item, item, index, label)
    return RawRecord("otherEvent", item, item, index, label)


def _export_report(item: dict[str, Any]) -> str | None:
    for report, columns in catalog.EXPORT_REPORT_SIGNATURES.items():
        for column in columns:
            if column in item:
                return report
    return None


def _export_fields(row: dict[str, Any]) -> dict[str, Any]:
    """A report row's columns with each enum code replaced by its ``<Column>_loc`` text.

    The codes belong to report-internal enums with no published table, so only the text can
    be read: a failure column's bare code (no text beside it) is kept as ``<Column>_code``
    and the column itself left empty, so a report code is never taken for a Graph one.
    Export CSV gives every value as text, so numbers arrive as strings either way.
    """
    suffix = catalog.LOCALIZED_SUFFIX
    fields = dict(row)
    for name in catalog.EXPORT_FAILURE_COLUMNS:
        value = row.get(name)
        if type(value) is int or (type(value) is str and value.strip().isdigit()):
            fields[name + "_code"] = str(value).strip()
            fields[name] = ""
    for name, value in row.items():
        if name.endswith(suffix) and type(value) is str and value.strip():
            fields[name[:-len(suffix)]] = value
    return fields


def first_present(mapping: dict[str, Any], names: tuple[str, ...]) -> Any:
    """The value of the first of ``names`` that ``mapping`` holds and is not null."""
    for name in names:
        value = mapping.get(name)
        if value is not None:
            return value
    return None


def _json_error(value: bytes, exc: orjson.JSONDecodeError) -> Rejection:
    text = _short(exc)
    if text.startswith("depth limit") or text.startswith("recursion"):
        return Rejection("too_deep", f"JSON nests deeper than the parser's limit: {text}")
    try:
        value.decode("utf-8")
    except UnicodeDecodeError as uexc:
        return Rejection("not_utf8", f"not valid UTF-8 at byte {uexc.start}")
    return Rejection("not_json", f"not valid JSON: {text}")


def _short(exc: Exception) -> str:
    return str(exc)[:_MAX_ERROR_TEXT]


def _kind(value: Any) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "an array"
        case _:
            return type(value).__name__
