"""How long to wait: retry delays (exponential, jittered, capped; Retry-After honoured) and a
request budget per minute. Pure: the caller passes the time and the random number in."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Delay before retry number ``attempt`` (0 for the first retry) of one request."""

    base_s: float = 1.0
    cap_s: float = 300.0
    max_attempts: int = 8  # then the poll is abandoned (and tried again next interval)

    def delay(self, attempt: int, retry_after_s: float | None,
              random: Callable[[], float]) -> float:
        """The server's Retry-After when given (already bounded by errors.parse_retry_after),
        else "equal jitter": half the capped exponential step plus a random half, so many
        sources that failed together do not retry together, and none retries at once."""
        if retry_after_s is not None:
            return retry_after_s
        step = min(self.cap_s, self.base_s * 2.0 ** min(attempt, 62))
        return step / 2 + random() * step / 2

    def exhausted(self, attempt: int) -> bool:
        return attempt >= self.max_attempts


@dataclass(slots=True)
class RequestBudget:
    """At most ``per_minute`` requests in any 60 s (sliding window). Graph's published limit
    for troubleshooting events is 1,000 requests per app per tenant per 20 s; the default
    budget stays far below it because other tools of the tenant share that limit."""

    per_minute: int
    sent: deque[float] = field(default_factory=deque)

    def wait_s(self, now: float) -> float:
        """Seconds until another request may be sent (0 when it may go now)."""
        while self.sent and now - self.sent[0] >= 60.0:
            self.sent.popleft()
        if len(self.sent) < self.per_minute:
            return 0.0
        return 60.0 - (now - self.sent[0])

    def spend(self, now: float) -> None:
        self.sent.append(now)
