"""A dead-letter record back to the input bytes it was made from, or why it cannot be.

The format is :class:`worker.contracts.models.DeadLetterRecord`: the original bytes as UTF-8
text or base64, with their size and SHA-256. Recovery is exact or refused: the bytes must
decode to exactly ``payloadBytes`` bytes with exactly that digest. A payload cut to the
dead-letter size limit (``payloadTruncated``) cannot be classified again, and neither can a
record that is not a dead letter at all; both are reported as still unreadable. Pure: no
Kafka here, never raises.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

import orjson

from worker.classify.core import Source
from worker.contracts.models import DeadLetterRecord, ErrorClassName

# Why a dead letter's bytes are not recoverable; a closed set, so it can label counts.
Unrecoverable = Literal["not_a_dead_letter", "truncated", "bad_payload", "digest_mismatch"]
NOT_A_DEAD_LETTER: Final = "not_a_dead_letter"  # stands in for the error class too
_ERROR_CLASSES: Final = frozenset(get_args(ErrorClassName))
# The fields recovery reads, with their types in DeadLetterRecord. Checked by hand, not by
# the pydantic model: parsing with orjson is three times cheaper, and replay runs it per
# dead letter (tests/unit/test_jobs.py holds the two to the same verdicts).
_FIELDS: Final[dict[str, type | tuple[type, ...]]] = {
    "schemaVersion": int, "errorClass": str, "source": dict, "payloadScope": str,
    "payload": (str, type(None)), "payloadEncoding": str, "payloadBytes": int,
    "payloadSha256": str, "payloadTruncated": bool}
_SOURCE_FIELDS: Final[dict[str, type | tuple[type, ...]]] = {
    "topic": str, "partition": int, "offset": int, "recordIndex": (int, type(None))}
if not set(_FIELDS) <= set(DeadLetterRecord.model_fields):
    raise ImportError("dead_letters._FIELDS names a field DeadLetterRecord does not have")


@dataclass(frozen=True, slots=True)
class Recovered:
    payload: bytes | None  # None: the original was a tombstone
    source: Source  # the original input coordinates, so derived ids come out the same
    index: int | None  # the record's position in its envelope, for a record-scope letter
    error_class: str


@dataclass(frozen=True, slots=True)
class Refused:
    error_class: str
    reason: Unrecoverable


def recover(value: bytes | None) -> Recovered | Refused:
    """The original bytes of one dead-letter message value. Never raises."""
    letter = _parse(value)
    if letter is None:
        return Refused(NOT_A_DEAD_LETTER, "not_a_dead_letter")
    cls: str = letter["errorClass"]
    if letter["payloadTruncated"]:
        return Refused(cls, "truncated")
    encoding, text = letter["payloadEncoding"], letter["payload"]
    payload = None if encoding == "none" or text is None else _decode(text, encoding)
    if payload is None and encoding != "none":
        return Refused(cls, "bad_payload")
    if payload is not None and (len(payload) != letter["payloadBytes"]
                                or hashlib.sha256(payload).hexdigest() != letter["payloadSha256"]):
        return Refused(cls, "digest_mismatch")
    src = letter["source"]
    index = src["recordIndex"] if letter["payloadScope"] == "record" else None
    return Recovered(payload, Source(src["topic"], src["partition"], src["offset"]), index, cls)


def _parse(value: bytes | None) -> dict[str, Any] | None:
    try:
        doc = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    if (not isinstance(doc, dict) or not _typed(doc, _FIELDS)
            or not _typed(doc["source"], _SOURCE_FIELDS) or doc["schemaVersion"] != 1
            or doc["errorClass"] not in _ERROR_CLASSES
            or doc["payloadScope"] not in ("message", "record")
            or doc["payloadEncoding"] not in ("utf-8", "base64", "none")):
        return None
    return doc


def _typed(doc: dict[str, Any], fields: dict[str, type | tuple[type, ...]]) -> bool:
    # Exact types (orjson makes exactly these): a bool is not taken for an int. A plain loop,
    # not all(<generator>): this runs a dozen times per dead letter.
    for name, kind in fields.items():
        value = doc.get(name, _MISSING)
        if value.__class__ is not kind and (kind.__class__ is not tuple
                                            or value.__class__ not in kind):
            return False
    return True


_MISSING: Final = object()


def _decode(text: str, encoding: str) -> bytes | None:
    if encoding == "utf-8":
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate cannot have come from bytes
            return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
