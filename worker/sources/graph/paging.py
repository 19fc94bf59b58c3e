"""Graph collection pages: ``{"value": [...], "@odata.nextLink": "..."}``.

A page is read into a :class:`Page` or rejected with the problem named (errors.malformed_page
turns that into a retry). A nextLink must stay on the Graph host the source was configured
with: the bearer token goes with every request, so a link elsewhere is refused, never followed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

NEXT_LINK = "@odata.nextLink"


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Any]
    next_link: str | None


def read_page(body: bytes, graph_url: str) -> Page | str:
    """The page in ``body``, or a string naming what is wrong with it. Never raises."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return f"not JSON ({exc})"
    if not isinstance(parsed, dict):
        return "not a JSON object"
    items = parsed.get("value")
    if not isinstance(items, list):
        return "no 'value' array"
    link = parsed.get(NEXT_LINK)
    if link is None:
        return Page(items, None)
    if not isinstance(link, str) or not link:
        return f"{NEXT_LINK} is not a URL"
    if not same_origin(link, graph_url):
        return f"{NEXT_LINK} leaves the Graph host ({urlsplit(link).netloc or link[:80]})"
    return Page(items, link)


def same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc.lower()) == (b.scheme, b.netloc.lower())


def collection_url(graph_url: str, path: str, page_size: int | None) -> str:
    """The first page's URL. ``$top`` only asks for a page size; Graph may ignore it."""
    url = f"{graph_url.rstrip('/')}/beta/{path}"
    return f"{url}?$top={page_size}" if page_size else url
