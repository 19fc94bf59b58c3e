"""Reading a collection from Graph: one GET per page, retried and paced.

Every answer goes through :func:`errors.classify_response`; this module only acts on the
verdict: use the page, wait and retry, or stop. Waiting goes through ``Pacing.sleep``, which
returns True when the source is told to stop, so shutdown is never stuck behind a back-off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

import httpx

from worker.sources.graph.backoff import BackoffPolicy, RequestBudget
from worker.sources.graph.endpoints import Collection
from worker.sources.graph.errors import (
    GraphFatalError,
    Verdict,
    classify_response,
    connection_failed,
    malformed_page,
)
from worker.sources.graph.paging import Page, read_page

log = logging.getLogger("worker.sources.graph")
T = TypeVar("T")
MAX_PAGES = 100_000  # a nextLink chain longer than this is a loop on the server's side


class TokenUnavailable(Exception):  # noqa: N818 - an outcome carrying its verdict
    """No access token this time; ``verdict`` says whether to retry or stop."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


class Tokens(Protocol):
    def token(self) -> str:
        """A valid access token (cached and refreshed by the library). Raises
        TokenUnavailable."""
        ...


class Observer(Protocol):
    def request(self, collection: str, action: str) -> None: ...
    def wait(self, collection: str, reason: str, seconds: float) -> None: ...


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    url: str
    body: bytes | None = None
    # False for a pre-signed download link (the export's SAS URL on blob storage): the bearer
    # token is only ever sent to the Graph host.
    authorized: bool = True


class PollAbandoned(Exception):  # noqa: N818 - an outcome, not a bug
    """Retries ran out for this poll; nothing was published, the next poll starts over."""


class Stopped(Exception):  # noqa: N818 - an outcome, not a bug
    """The source was told to stop while waiting."""


@dataclass(frozen=True, slots=True)
class Pacing:
    clock: Callable[[], float]  # monotonic seconds, for the budget
    wall: Callable[[], float]  # Unix seconds, for HTTP-date Retry-After
    sleep: Callable[[float], bool]  # waits; True means "stop now"
    random: Callable[[], float]  # [0, 1), for jitter


class GraphReader:
    """Reads whole collections. Not thread-safe; one per source."""

    def __init__(self, http: httpx.Client, tokens: Tokens, *, graph_url: str,
                 policy: BackoffPolicy, budget: RequestBudget, pacing: Pacing,
                 observer: Observer) -> None:
        self.http, self.tokens, self.graph_url = http, tokens, graph_url
        self.policy, self.budget, self.pacing, self.observer = policy, budget, pacing, observer

    def items(self, collection: Collection, first_url: str) -> Iterator[Any]:
        """Every item of every page, following @odata.nextLink. Raises GraphFatalError,
        PollAbandoned or Stopped; a page is only yielded once it was read completely."""
        url: str | None = first_url
        seen: set[str] = set()
        while url is not None:
            if url in seen or len(seen) >= MAX_PAGES:
                raise PollAbandoned(f"{collection.name}: @odata.nextLink loops ({len(seen)} "
                                    "pages)")
            seen.add(url)
            page = self.page(collection, url)
            yield from page.items
            url = page.next_link

    def page(self, collection: Collection, url: str) -> Page:
        """One page, retried per the policy."""
        return self.fetch(collection, Request("GET", url),
                          lambda body: read_page(body, self.graph_url))

    def fetch(self, collection: Collection, request: Request,
              parse: Callable[[bytes], T | str]) -> T:
        """Send ``request`` until it gives a body ``parse`` accepts (a str from parse names
        what is wrong, and is retried). Raises GraphFatalError, PollAbandoned or Stopped."""
        attempt = 0
        while True:
            self._within_budget(collection.name)
            verdict, result = self._attempt(collection, request, parse)
            self.observer.request(collection.name, verdict.action)
            if verdict.action == "ok":
                return cast(T, result)
            if verdict.action == "fatal":
                raise GraphFatalError(f"{collection.name}: {verdict.reason}")
            if self.policy.exhausted(attempt):
                raise PollAbandoned(f"{collection.name}: gave up after {attempt + 1} "
                                    f"attempts: {verdict.reason}")
            delay = self.policy.delay(attempt, verdict.retry_after_s, self.pacing.random)
            log.warning("Graph request will be retried", extra={
                "collection": collection.name, "outcome": verdict.action,
                "reason": verdict.reason, "attempt": attempt + 1,
                "wait_s": round(delay, 3)})
            self.wait(collection.name, verdict.action, delay)
            attempt += 1

    def _attempt(self, collection: Collection, request: Request,
                 parse: Callable[[bytes], T | str]) -> tuple[Verdict, T | None]:
        headers = {"Accept": "application/json"}
        if request.authorized:
            try:
                headers["Authorization"] = f"Bearer {self.tokens.token()}"
            except TokenUnavailable as exc:
                return exc.verdict, None
        if request.body is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = self.http.request(request.method, request.url, headers=headers,
                                         content=request.body)
        except httpx.TransportError as exc:  # includes timeouts and TLS failures
            return connection_failed(f"{type(exc).__name__}: {exc}"), None
        verdict = classify_response(response.status_code, response.headers, response.content,
                                    permission=collection.permission, now=self.pacing.wall())
        if verdict.action != "ok":
            return verdict, None
        parsed = parse(response.content)
        if isinstance(parsed, str):
            return malformed_page(parsed), None
        return verdict, parsed

    def _within_budget(self, collection: str) -> None:
        wait = self.budget.wait_s(self.pacing.clock())
        if wait > 0:
            self.wait(collection, "budget", wait)
        self.budget.spend(self.pacing.clock())

    def wait(self, collection: str, reason: str, seconds: float) -> None:
        """Wait (counted under ``reason``); raises Stopped when told to stop meanwhile."""
        self.observer.wait(collection, reason, seconds)
        if self.pacing.sleep(seconds):
            raise Stopped()
