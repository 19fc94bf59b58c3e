"""The core's memo tables: bounded whatever the input, and keyed as exactly as the lru_cache
they replaced (1 and 1.0 are equal in Python but are different raw categories)."""

from __future__ import annotations

from worker.classify import normalize
from worker.classify.memo import Memo
from worker.classify.normalize import decide, find_detail


def test_memo_remembers_and_stays_bounded() -> None:
    memo: Memo[str, int] = Memo(3)
    assert memo.get("a") is None
    assert memo.put("a", 1) == 1 and memo.get("a") == 1
    for i in range(100):
        memo.put(f"k{i}", i)
        assert len(memo) <= 3
    memo.clear()
    assert len(memo) == 0


def test_decisions_keep_the_raw_category_type() -> None:
    as_int = decide("named", None, None, 1, None)
    as_float = decide("named", None, None, 1.0, None)
    assert as_int.raw_category.__class__ is int
    assert as_float.raw_category.__class__ is float


def test_find_detail_remembers_no_match_and_distinct_texts_stay_bounded() -> None:
    normalize.forget()
    assert find_detail("nothing to see here") is None
    assert find_detail("nothing to see here") is None  # served from the memo
    for i in range(9000):
        find_detail(f"distinct text {i}")
    assert len(normalize._DETAILS) <= 8192
    assert find_detail("UserNotLicensed") is not None
