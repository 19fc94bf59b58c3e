"""Remediation beyond the catalog's fixed hints, for one event.

Microsoft's own: Graph beta events may carry ``troubleshootingErrorDetails`` (``remediation``
text and ``resources[]`` of ``text`` and ``link``); the ``EnrollmentActivity`` export has a
``Remediation`` column. Their text is the service's advice for this very event, so the output
puts it first (``scope: "microsoft"``), ahead of the catalog's hints. It is untrusted input:
text is cut to ``catalog.MAX_MICROSOFT_TEXT`` characters, at most
``catalog.MAX_MICROSOFT_LINKS`` links are kept, and only http(s) links at all.

For a failure the catalog could not name: what was seen, and where to look. A fixed "open a
support case" is the wrong first step for text the classifier has simply not met: the code or
message usually names its own log. That hint quotes the raw reason and any code in it, says
which reference or log explains that code's family, and keeps the category's general steps
after it. Pure; the caller caches the results.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from worker.classify import catalog, codes
from worker.classify.decode import RawRecord
from worker.classify.taxonomy import FailureCategory

_URL: Final = re.compile(r"https?://[^\s<>\"')\]]+", re.IGNORECASE)
_SCHEMES: Final = ("https://", "http://")
_SPACE: Final = re.compile(r"\s")
_NO_TEXT: Final = "Microsoft's documentation for this failure (links below)."
MAX_QUOTED: Final = 160


@dataclass(frozen=True, slots=True)
class MicrosoftHint:
    """Microsoft's remediation for one event; hashable, so encoded outputs can be cached
    (the service repeats the same text for the same failure)."""

    summary: str
    steps: tuple[str, ...]
    doc_url: str | None

    def as_json(self) -> dict[str, Any]:
        return {"scope": "microsoft", "summary": self.summary, "steps": list(self.steps),
                "docUrl": self.doc_url}


# The shapes that can carry Microsoft's remediation (core skips the call for the others).
HINT_SHAPES: Final = frozenset(("graphEvent", "reportExport"))


def microsoft_hint(record: RawRecord) -> MicrosoftHint | None:
    """The event's own remediation, or None when it has none."""
    shape = record.shape
    if shape == "graphEvent":
        details = record.fields.get("troubleshootingErrorDetails")
        return _from_error_details(details) if type(details) is dict else None
    if shape == "reportExport":
        text = record.fields.get("Remediation")
        return _from_text(text) if type(text) is str else None
    return None


def _from_error_details(details: dict[str, Any]) -> MicrosoftHint | None:
    links = _resource_links(details.get("resources"))
    text = details.get("remediation")
    summary = _bounded(text) if type(text) is str else None
    if summary is None and not links:
        return None
    return _hint(summary or _NO_TEXT, links)


def _from_text(text: str) -> MicrosoftHint | None:
    summary = _bounded(text)
    if summary is None:
        return None
    urls = _URL.findall(text[:catalog.MAX_MICROSOFT_TEXT])
    links = [{"text": "Microsoft documentation", "url": url} for url in urls
             if len(url) <= catalog.MAX_LINK_CHARS][:catalog.MAX_MICROSOFT_LINKS]
    return _hint(summary, links)


def _resource_links(resources: Any) -> list[dict[str, str]]:
    if type(resources) is not list:
        return []
    links: list[dict[str, str]] = []
    for item in resources[:catalog.MAX_MICROSOFT_LINKS * 4]:
        if type(item) is not dict:
            continue
        url, text = item.get("link"), item.get("text")
        if type(url) is not str or not url.startswith(_SCHEMES) \
                or len(url) > catalog.MAX_LINK_CHARS or _SPACE.search(url):
            continue
        label = _bounded(text) if type(text) is str else None
        links.append({"text": (label or url)[:256], "url": url})
        if len(links) == catalog.MAX_MICROSOFT_LINKS:
            break
    return links


def _hint(summary: str, links: list[dict[str, str]]) -> MicrosoftHint:
    return MicrosoftHint(summary, tuple(f"{link['text']}: {link['url']}" for link in links),
                         links[0]["url"] if links else None)


def _bounded(text: str) -> str | None:
    cut = text[:catalog.MAX_MICROSOFT_TEXT].strip()
    if "  " in cut or "\n" in cut or "\t" in cut:  # rare: collapse runs of white space
        cut = " ".join(text[:catalog.MAX_MICROSOFT_TEXT * 2].split())[:catalog.MAX_MICROSOFT_TEXT]
    return cut or None


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
