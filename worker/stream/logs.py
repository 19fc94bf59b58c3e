"""Structured logs: one JSON object per line on stderr.

Fields passed with ``extra={...}`` become top-level keys. Raw message payloads are never
logged above DEBUG, and nothing here ever sees a secret: settings are logged through
``Settings.__str__``, which masks them.

Repeated lines are rate limited: a record with a ``rate_key`` (``extra={"rate_key": ...}``),
and every librdkafka line (keyed by logger and facility), is written at most once per kind
per interval; the next line of that kind says how many were left out (``repeated``). A broker
outage then costs a few lines a minute instead of thousands.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


@dataclass(slots=True)
class RateLimiter:
    """Let one event per key through per ``interval_s``; count the rest (time passed in)."""

    clock: Callable[[], float]
    interval_s: float = 30.0
    _last: dict[str, float] = field(default_factory=dict)
    _held: dict[str, int] = field(default_factory=dict)

    def admit(self, key: str) -> int | None:
        """None to drop this event; else how many of its kind were dropped before it."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._held.pop(key, 0)


class RateLimitFilter(logging.Filter):
    """A handler filter applying a RateLimiter to keyed records (see the module docstring)."""

    def __init__(self, limiter: RateLimiter) -> None:
        super().__init__()
        self.limiter = limiter

    def filter(self, record: logging.LogRecord) -> bool:
        key = getattr(record, "rate_key", None)
        if key is None and record.name.startswith("librdkafka"):
            # librdkafka lines start with their facility: "FAIL [thrd:...]: ..."
            key = f"{record.name}:{str(record.msg).split(' ', 1)[0]}"
        if key is None:
            return True
        held = self.limiter.admit(str(key))
        if held is None:
            return False
        if held:
            record.repeated = held
        return True


def setup(level: str, rate_limit_s: float = 30.0) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RateLimitFilter(RateLimiter(time.monotonic, rate_limit_s)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
