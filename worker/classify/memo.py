"""Bounded memo tables for the per-event lookups of the core.

Real streams repeat a small set of values (categories, reasons, operating systems, decisions),
so their results are remembered. ``functools.lru_cache`` did this first, but a call through
it costs an argument tuple and a C-level call that mypyc cannot make native; on the hot path
that was ~13 % of the compiled core's time. A ``Memo`` is a plain dict behind native
methods. It is emptied when full instead of evicting the least recent entry: keys are
bounded in size, and a stream of distinct values (hostile or not) then costs one miss each,
as it did with the LRU, while memory stays bounded.
"""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Memo(Generic[K, V]):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.values: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        return self.values.get(key)

    def put(self, key: K, value: V) -> V:
        """Remember ``value`` for ``key`` and return it."""
        values = self.values
        if len(values) >= self.limit:
            values.clear()
        values[key] = value
        return value

    def clear(self) -> None:
        self.values.clear()

    def __len__(self) -> int:
        return len(self.values)
