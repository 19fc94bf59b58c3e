"""Remediation for a failure the catalog could not name: what was seen, and where to look.

A fixed "open a support case" is the wrong first step for text the classifier has simply not
met: the code or message usually names its own log. The hint built here quotes the raw
reason and any code in it, says which reference or log explains that code's family, and
keeps the category's general steps after it. Pure; the caller caches the result.
"""

from __future__ import annotations

from typing import Any, Final

from worker.classify import catalog, codes
from worker.classify.taxonomy import FailureCategory

MAX_QUOTED: Final = 160


def unknown_hints(raw_reason: str | None) -> list[dict[str, Any]]:
    """The remediation list of an ``unknown`` event that has no detail reason."""
    general = catalog.CATEGORY_HINTS[FailureCategory.unknown]
    if not raw_reason or not raw_reason.strip():
        seen, steps = "no failure reason was sent", []
    else:
        quoted = raw_reason.strip()
        if len(quoted) > MAX_QUOTED:
            quoted = quoted[:MAX_QUOTED] + "..."
        seen, steps = f"reason {quoted!r}", _code_steps(raw_reason[:8192])
    summary = f"Not recognised: {seen}. {general.summary}"
    return [{"scope": "category", "summary": summary, "steps": [*steps, *general.steps],
             "docUrl": general.doc}]


def _code_steps(text: str) -> list[str]:
    for reading in codes.codes_in(text):
        where = codes.where_to_look(reading.number)
        if where is not None:
            return [f"The code 0x{reading.number:08X} is {where}."]
    for number in codes.aadsts_numbers(text):
        return [f"AADSTS{number} is an Entra ID sign-in error: find the attempt in the "
                "user's Entra ID sign-in log, whose failure reason names the fix."]
    return []
