"""Microsoft's own remediation for one event, as a remediation hint marked as Microsoft's.

Graph beta events may carry ``troubleshootingErrorDetails`` (``remediation`` text and
``resources[]`` of ``text`` and ``link``); the ``EnrollmentActivity`` export has a
``Remediation`` column. Their text is the service's advice for this very event, so the output
puts it first (``scope: "microsoft"``), ahead of the catalog's hints. It is untrusted input:
text is cut to ``catalog.MAX_MICROSOFT_TEXT`` characters, at most
``catalog.MAX_MICROSOFT_LINKS`` links are kept, and only http(s) links at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from worker.classify import catalog
from worker.classify.decode import RawRecord

_URL: Final = re.compile(r"https?://[^\s<>\"')\]]+", re.IGNORECASE)
_SCHEMES: Final = ("https://", "http://")
_SPACE: Final = re.compile(r"\s")
_NO_TEXT: Final = "Microsoft's documentation for this failure (links below)."


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
        return _from_error_details(details) if details.__class__ is dict else None
    if shape == "reportExport":
        text = record.fields.get("Remediation")
        return _from_text(text) if text.__class__ is str else None
    return None


def _from_error_details(details: dict[str, Any]) -> MicrosoftHint | None:
    links = _resource_links(details.get("resources"))
    text = details.get("remediation")
    summary = _bounded(text) if text.__class__ is str else None
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
    if resources.__class__ is not list:
        return []
    links: list[dict[str, str]] = []
    for item in resources[:catalog.MAX_MICROSOFT_LINKS * 4]:
        if item.__class__ is not dict:
            continue
        url, text = item.get("link"), item.get("text")
        if url.__class__ is not str or not url.startswith(_SCHEMES) \
                or len(url) > catalog.MAX_LINK_CHARS or _SPACE.search(url):
            continue
        label = _bounded(text) if text.__class__ is str else None
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
