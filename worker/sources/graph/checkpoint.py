"""What has been published, and what one read of a collection adds: the exactly-once logic.

The collections reject a time ``$filter`` and do not order reliably, so every poll reads the
whole collection and keeps what is new. A :class:`Checkpoint` remembers the newest event time
seen (the *watermark*) and the ids published inside the *overlap window* below it. An event is
new when its id was not published and its time is inside the window or later; an event older
than the window was published by an earlier poll or arrived later than the window allows (the
window is the operator's bound on lateness), and is counted as ``before_window``.

A poll publishes its new events and the next checkpoint in one Kafka transaction (see
publish.py), so a crash anywhere leaves either both or neither: a restart reads the same
collection against the same checkpoint and publishes the same events, once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from worker.sources.graph.events import Event, format_time, parse_time

FORMAT_VERSION: Final = 1
SKIP_REASONS: Final = ("already_published", "repeated_in_read", "before_window")
# An eventDateTime ahead of the clock by more than this does not move the watermark (a skewed
# or bogus time must not push the window past everything still to come).
MAX_FUTURE_S: Final = 300.0


class CheckpointError(Exception):
    """A stored checkpoint cannot be read: stop rather than guess what was published."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    watermark: float | None = None  # Unix seconds; None before the first poll
    published: dict[str, float] = field(default_factory=dict)  # id -> event time, in window
    updated_at: float | None = None  # Unix time this checkpoint was made

    def cutoff(self, overlap_s: float) -> float | None:
        return None if self.watermark is None else self.watermark - overlap_s


@dataclass(frozen=True, slots=True)
class Selection:
    new: list[Event]  # to publish, in the order the collection gave them
    checkpoint: Checkpoint  # to commit in the same transaction
    skipped: Counter[str]  # by SKIP_REASONS


def select_new(checkpoint: Checkpoint, events: Iterable[Event], *, overlap_s: float,
               now: float) -> Selection:
    """Split one complete read of a collection into what to publish and what to skip, and
    compute the checkpoint to commit with it. Pure; ``now`` is Unix time."""
    cutoff = checkpoint.cutoff(overlap_s)
    seen: set[str] = set()
    new: list[Event] = []
    skipped: Counter[str] = Counter()
    newest = checkpoint.watermark
    for event in events:
        if event.id in seen:
            skipped["repeated_in_read"] += 1  # paging shifted under us: one copy is enough
            continue
        seen.add(event.id)
        if event.time <= now + MAX_FUTURE_S:
            newest = event.time if newest is None else max(newest, event.time)
        if event.id in checkpoint.published:
            skipped["already_published"] += 1
        elif cutoff is not None and event.time < cutoff:
            # Published by an earlier poll, or later than the window allows: the two cannot
            # be told apart without remembering every id, which is what the window bounds.
            skipped["before_window"] += 1
        else:
            new.append(event)
    published = {**checkpoint.published, **{e.id: e.time for e in new}}
    if newest is not None:
        floor = newest - overlap_s
        published = {i: t for i, t in published.items() if t >= floor}
    return Selection(new, Checkpoint(newest, published, now), skipped)


def encode(checkpoint: Checkpoint, *, tenant: str, collection: str) -> bytes:
    return orjson.dumps({
        "version": FORMAT_VERSION, "tenantId": tenant, "collection": collection,
        "watermark": None if checkpoint.watermark is None else format_time(checkpoint.watermark),
        "updatedAt": None if checkpoint.updated_at is None else format_time(checkpoint.updated_at),
        "published": {i: format_time(t) for i, t in sorted(checkpoint.published.items())},
    })


def decode(value: bytes) -> Checkpoint:
    """Read a stored checkpoint. Raises CheckpointError naming the problem."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise CheckpointError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"not a version {FORMAT_VERSION} checkpoint object")
    published = doc.get("published")
    if not isinstance(published, dict):
        raise CheckpointError("'published' is not an object")
    times = {i: parse_time(t) for i, t in published.items()}
    if any(t is None for t in times.values()):
        raise CheckpointError("'published' holds an unreadable time")
    return Checkpoint(_optional_time(doc, "watermark"),
                      {i: t for i, t in times.items() if t is not None},
                      _optional_time(doc, "updatedAt"))


def _optional_time(doc: dict[str, Any], name: str) -> float | None:
    raw = doc.get(name)
    if raw is None:
        return None
    parsed = parse_time(raw)
    if parsed is None:
        raise CheckpointError(f"{name!r} is not a time: {raw!r}")
    return parsed


def checkpoint_key(tenant: str, collection: str) -> bytes:
    """One compacted record per tenant and collection."""
    return f"{tenant}/{collection}".encode()
