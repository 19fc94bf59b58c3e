"""What a job did (or, with ``--dry-run``, would do), by group: a dead letter's error class
for replay, one group for reclassify. Label values are the metrics' own (category names,
error classes), so the summary reads like the worker's counters.

A window's counts join the total only when its transaction commits, so the summary equals
what the output topic holds, as the worker's metrics do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from worker.classify.core import Classified, DeadLetter, Outcome, Skipped
from worker.classify.taxonomy import FailureCategory


@dataclass(slots=True)
class GroupCounts:
    messages: int = 0  # dead letters (replay) or input messages (reclassify) read
    readable: int = 0  # messages whose every record now classifies or is skipped
    partly: int = 0  # messages with both readable and still unreadable records
    unreadable: int = 0  # messages with no readable record at all
    classified: int = 0  # records
    skipped: int = 0  # records (successes, other operations, empty envelopes)
    dead_lettered: int = 0  # records still unreadable
    # Keyed by enum members, named only when shown: Enum.name is a slow property, and this
    # runs per record (as the worker's Tally does).
    categories: Counter[FailureCategory] = field(default_factory=Counter)
    unrecoverable: Counter[str] = field(default_factory=Counter)  # why bytes were not recovered

    def add(self, outcomes: Iterable[Outcome]) -> None:
        """Count one message's outcomes."""
        classified = skipped = dead = 0
        categories = self.categories
        for o in outcomes:
            if o.__class__ is Classified:  # the common case first
                classified += 1
                categories[o.category] += 1
            elif isinstance(o, DeadLetter):
                dead += 1
            elif isinstance(o, Skipped):
                skipped += 1
        self.messages += 1
        self.classified, self.skipped = self.classified + classified, self.skipped + skipped
        self.dead_lettered += dead
        if not dead:
            self.readable += 1
        elif classified or skipped:
            self.partly += 1
        else:
            self.unreadable += 1

    def refuse(self, reason: str) -> None:
        """Count one message whose original bytes could not be recovered."""
        self.messages += 1
        self.unreadable += 1
        self.unrecoverable[reason] += 1

    def merge(self, other: GroupCounts) -> None:
        for name in ("messages", "readable", "partly", "unreadable", "classified", "skipped",
                     "dead_lettered"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.categories.update(other.categories)
        self.unrecoverable.update(other.unrecoverable)

    def as_dict(self) -> dict[str, Any]:
        return {"messages": self.messages, "readable": self.readable, "partly": self.partly,
                "unreadable": self.unreadable, "classified": self.classified,
                "skipped": self.skipped, "dead_lettered": self.dead_lettered,
                "categories": dict(sorted((c.name, n) for c, n in self.categories.items())),
                "unrecoverable": dict(sorted(self.unrecoverable.items()))}


@dataclass(slots=True)
class JobCounts:
    groups: dict[str, GroupCounts] = field(default_factory=dict)
    published: int = 0  # records sent to the output topic
    copied: int = 0  # dead letters copied byte for byte to --to-topic

    def group(self, name: str) -> GroupCounts:
        found = self.groups.get(name)
        if found is None:
            found = self.groups[name] = GroupCounts()
        return found

    @property
    def messages(self) -> int:
        return sum(g.messages for g in self.groups.values())

    def merge(self, other: JobCounts) -> None:
        for name, counts in other.groups.items():
            self.group(name).merge(counts)
        self.published += other.published
        self.copied += other.copied

    def as_dict(self) -> dict[str, Any]:
        return {"groups": {n: g.as_dict() for n, g in sorted(self.groups.items())},
                "published": self.published, "copied": self.copied}


_COLUMNS = ("messages", "readable", "partly", "unreadable", "classified", "skipped")


def table(counts: JobCounts, group_title: str) -> str:
    """The summary as a plain-text table: one row per group, then the total."""
    total = GroupCounts()
    for g in counts.groups.values():
        total.merge(g)
    rows = [(name, g) for name, g in sorted(counts.groups.items())] + [("total", total)]
    width = max(len(group_title), *(len(name) for name, _ in rows))
    head = f"{group_title:<{width}}  " + "  ".join(f"{c:>10}" for c in _COLUMNS)
    lines = [head, "-" * len(head)]
    for name, g in rows:
        cells = "  ".join(f"{getattr(g, c):>10}" for c in _COLUMNS)
        lines.append(f"{name:<{width}}  {cells}  {_details(g)}".rstrip())
    return "\n".join(lines)


def _details(g: GroupCounts) -> str:
    parts = [f"{category.name}={n}" for category, n in g.categories.most_common()]
    parts += [f"unrecoverable:{name}={n}" for name, n in sorted(g.unrecoverable.items())]
    return ", ".join(parts)
