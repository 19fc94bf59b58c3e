"""One Graph event as the source handles it: its id, its time, its Kafka key and its bytes.

The bytes are the event's JSON object unchanged (``@odata.type`` included), as Graph sent it
in the page. The key is what the worker keys its outputs by (the Intune device id, else the
Entra device id, else the event id), read through the worker's own field table, so one
device's events land on one partition in order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from worker.classify import catalog

_KEY_FIELDS: Final = {shape: (*plan["intuneDeviceId"], *plan["entraDeviceId"])
                      for shape, plan in catalog.FIELD_SOURCES.items()}


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    time: float  # Unix seconds of eventDateTime
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class Unreadable:
    """An item the source cannot place in time: published nowhere, counted and logged."""

    reason: str
    id: str | None


def read_event(item: Any, *, id_field: str = "id", time_field: str = "eventDateTime",
               shape: str = "graphEvent") -> Event | Unreadable:
    """Never raises. An item without an id gets a content hash as its id, so it is still
    published once; one without a readable time cannot be windowed and is refused. ``shape``
    names the worker's field plan that gives the key."""
    if not isinstance(item, dict):
        return Unreadable("not_object", None)
    value = orjson.dumps(item)
    raw_id = item.get(id_field)
    event_id = raw_id if isinstance(raw_id, str) and raw_id else (
        "sha256:" + hashlib.sha256(value).hexdigest())
    when = parse_time(item.get(time_field))
    if when is None:
        return Unreadable("no_event_time", event_id)
    key = next((v for f in _KEY_FIELDS[shape] if isinstance(v := item.get(f), str) and v),
               event_id)
    return Event(event_id, when, key.encode(), value)


def parse_time(value: Any) -> float | None:
    """Unix seconds of a Graph DateTimeOffset (``2016-12-31T23:59:23.3984029-08:00``,
    ``...Z``); a value without an offset is UTC. None when unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def format_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds").replace(
        "+00:00", "Z")
