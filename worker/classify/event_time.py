"""Event time as Unix seconds, from the text of an event-time field.

Pure and clock-free like the rest of the core: the stream shell subtracts this from its own
processing time to export how old the events are (``enrollment_event_age_seconds``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from worker.classify.memo import Memo

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_MAX_EPOCH = 253402300799.0  # 9999-12-31T23:59:59Z, the last instant datetime can name
_MILLIS_FROM = 1e11  # larger epoch numbers are milliseconds (1e11 s is the year 5138)


def event_epoch(text: str | None) -> float | None:
    """Unix seconds of an event-time field value; None when absent or unreadable. Never raises.

    Reads ISO 8601 as Graph, Azure Monitor and Log Analytics write it (``Z`` or an offset,
    0 to 7 fractional digits; without an offset it is UTC, as ``EnrollmentTimeUTC`` and the
    exports are), and Unix seconds or milliseconds as a number.
    """
    if not text:
        return None
    n = len(text)
    # The common case, ``2026-11-02T09:15:27[.fff...]Z``, without building a datetime (that
    # cost ~6 % of the core's time per event): the date and hour repeat across a stream and
    # are cached; minutes and seconds are read digit by digit. Seconds are enough here.
    if n >= 20 and text[13] == ":" and text[16] == ":" and text[n - 1] == "Z" and (
            n == 20 or (text[19] == "." and _digits(text, 20, n - 1))):
        prefix = text[:13]
        hour = _HOUR_EPOCHS.get(prefix)
        if hour is None:
            hour = _hour_epoch(prefix)
        m1, m2, s1, s2 = (ord(text[14]) - 48, ord(text[15]) - 48, ord(text[17]) - 48,
                          ord(text[18]) - 48)
        if hour is not None and 0 <= m1 <= 5 and 0 <= m2 <= 9 and 0 <= s1 <= 5 \
                and 0 <= s2 <= 9:
            return hour + (m1 * 600 + m2 * 60 + s1 * 10 + s2)
    return _slow_epoch(text)


def _digits(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] is one or more ASCII digits (without slicing a copy)."""
    return start < end and all(48 <= ord(text[i]) <= 57 for i in range(start, end))


_HOUR_EPOCHS: Final[Memo[str, float]] = Memo(4096)  # "YYYY-MM-DDTHH" -> Unix seconds


def _hour_epoch(prefix: str) -> float | None:
    """``YYYY-MM-DDTHH`` as Unix seconds (UTC), or None if it is not that; cached if it is."""
    if len(prefix) != 13 or prefix[10] not in "Tt ":
        return None
    try:
        epoch = (datetime.fromisoformat(prefix + ":00") - _EPOCH_NAIVE).total_seconds()
    except ValueError:
        return None
    return _HOUR_EPOCHS.put(prefix, epoch)


def _slow_epoch(text: str) -> float | None:
    try:
        if text[-1:].isdecimal() and text.lstrip("-")[:1].isdecimal() and "-" not in text[1:]:
            number = float(text)  # a number (the fields give numbers as their str())
            epoch = number / 1000 if number >= _MILLIS_FROM else number
            return epoch if 0 <= epoch <= _MAX_EPOCH else None
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except (ValueError, OverflowError):
        return None
    if moment.tzinfo is None:
        return (moment - _EPOCH_NAIVE).total_seconds()
    try:
        return (moment - _EPOCH).total_seconds()
    except OverflowError:  # an offset pushes 0001-01-01 or 9999-12-31 out of range
        return None
