"""The one place HTTP outcomes are classified: what the source does about each answer.

* ``ok``: use the body.
* ``throttled``: wait (``Retry-After`` when given, else back off) and send the same request
  again. Intune's query broker reports throttling as HTTP 500 as well as 429, often without
  ``Retry-After``; a 503 with ``Retry-After`` is Graph's other throttling answer.
* ``retry``: a server or network fault (other 5xx, 408, a connection error, a page that is not
  the documented shape); back off and send it again.
* ``fatal``: retrying cannot help (401, 403, 400, 404, ...): stop with a message that says what
  to change, naming the permission on 403.

No other module inspects a status code.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

import orjson

Action = Literal["ok", "throttled", "retry", "fatal"]
ACTIONS: Final[tuple[Action, ...]] = ("ok", "throttled", "retry", "fatal")

# Phrases in a 5xx body that mean "slow down" rather than "broken" (seen from Intune's query
# broker: "Rate limit reached because of too many requests to query broker").
_THROTTLE_PHRASES: Final = ("rate limit", "too many requests", "throttl")
_RETRIABLE_4XX: Final = frozenset({408})
# Longest wait a Retry-After may impose; a larger value is taken as this (a broken header
# must not park the source for a day).
RETRY_AFTER_MAX_S: Final = 3600.0


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    reason: str  # for logs and error messages; never contains a token or a payload
    retry_after_s: float | None = None  # what the server asked for, if anything


class GraphFatalError(Exception):
    """Graph refused in a way retrying cannot fix; the message says what to change."""


def classify_response(status: int, headers: Mapping[str, str], body: bytes, *,
                      permission: str, now: float) -> Verdict:
    """Classify one HTTP answer. ``now`` is Unix time (for an HTTP-date Retry-After);
    ``permission`` is what to grant if the answer is 403. Never raises."""
    if 200 <= status < 300:
        return Verdict("ok", f"HTTP {status}")
    retry_after = parse_retry_after(headers.get("retry-after"), now)
    detail = graph_error_text(body)
    reason = f"HTTP {status}" + (f": {detail}" if detail else "")
    if status == 429 or (status in (500, 503) and (
            retry_after is not None or _mentions_throttling(detail))):
        return Verdict("throttled", reason, retry_after)
    if status >= 500 or status in _RETRIABLE_4XX:
        return Verdict("retry", reason, retry_after)
    if status == 401:
        return Verdict("fatal", f"{reason}. Graph did not accept the token: check the tenant "
                       "id, the client id and that the secret or certificate is current")
    if status == 403:
        return Verdict("fatal", f"{reason}. The application lacks a permission: grant the "
                       f"application permission {permission} and admin consent, then restart")
    return Verdict("fatal", f"{reason}. The request itself is wrong (check --graph-url: the "
                   "collections are under /beta, which every cloud may not offer)")


def connection_failed(error: str) -> Verdict:
    """A request that got no HTTP answer (refused, reset, timed out, TLS failure)."""
    return Verdict("retry", f"no answer: {error}")


def malformed_page(problem: str) -> Verdict:
    """A 2xx whose body is not what was asked for (a truncated page, a proxy's error page, a
    broken download)."""
    return Verdict("retry", f"unexpected answer: {problem}")


def token_refused(error: str, description: str) -> Verdict:
    """The login endpoint answered with an OAuth2 error (RFC 6749 section 5.2)."""
    if error in ("temporarily_unavailable", "server_error"):
        return Verdict("retry", f"token endpoint: {error}: {description}")
    return Verdict("fatal", f"token endpoint refused the client credentials: {error}: "
                   f"{description}. Check --tenant-id, --client-id and the secret or "
                   "certificate (and --authority-url for sovereign clouds)")


def _mentions_throttling(text: str) -> bool:
    lowered = text.lower()
    return any(phrase in lowered for phrase in _THROTTLE_PHRASES)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), bounded to
    [0, RETRY_AFTER_MAX_S]; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - now
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_S)


def graph_error_text(body: bytes, limit: int = 300) -> str:
    """``code: message`` from Graph's error body ``{"error": {"code", "message"}}``, else the
    start of the body as text (a proxy's page, Intune's plain-text throttling message)."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:limit].decode("utf-8", "replace").strip()
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        code, message = error.get("code"), error.get("message")
        return ": ".join(str(p) for p in (code, message) if p)[:limit]
    if isinstance(error, str):  # OAuth2 shape
        return f"{error}: {parsed.get('error_description', '')}"[:limit]
    return ""
