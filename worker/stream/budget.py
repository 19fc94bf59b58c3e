"""The shutdown budget: how long the worker may still take, from the signal to its exit.

:class:`Deadline` is pure arithmetic on a clock passed in. Before ``start()`` it is unlimited,
so the same code path serves normal operation (a call's own cap applies) and shutdown (every
blocking call gets at most what is left). :class:`ShutdownSignals` is the imperative half:
a thread that waits for SIGTERM/SIGINT, starts the budget at the moment the signal arrives
(not when the main thread next runs Python) and ends the process itself if the budget runs
out while a client call ignores its timeout.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("worker")
Clock = Callable[[], float]


@dataclass(slots=True)
class Deadline:
    """A point in time after which nothing more may be waited for; None until started."""

    clock: Clock
    expires_at: float | None = None
    # Clients were left inside a call that did not return in time: the process must end
    # without running their destructors, which would wait for the same broker.
    abandoned: bool = False

    def start(self, budget_s: float) -> None:
        """Start the countdown; a second start keeps the first (earlier) expiry."""
        if self.expires_at is None:
            self.expires_at = self.clock() + budget_s

    @property
    def started(self) -> bool:
        return self.expires_at is not None

    def remaining(self, reserve_s: float = 0.0) -> float | None:
        """Seconds left (never negative) when ``reserve_s`` must be kept for a later step
        (closing the clients), or None while no budget runs."""
        if self.expires_at is None:
            return None
        return max(0.0, self.expires_at - reserve_s - self.clock())

    def cap(self, timeout: float, reserve_s: float = 0.0) -> float:
        """``timeout``, shortened to what is left of the budget."""
        left = self.remaining(reserve_s)
        return timeout if left is None else min(timeout, left)

    def spent(self, reserve_s: float = 0.0) -> bool:
        left = self.remaining(reserve_s)
        return left is not None and left <= 0.0


def within(call: Callable[[], object], timeout: float) -> tuple[bool, BaseException | None]:
    """Run a call that takes no timeout of its own (``Consumer.close``) on a helper thread and
    wait at most ``timeout`` for it: (finished, what it raised)."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as exc:  # handed to the caller, not lost on the helper thread
            raised.append(exc)
    helper = threading.Thread(target=target, name="bounded-call", daemon=True)
    helper.start()
    helper.join(max(0.0, timeout))
    return not helper.is_alive(), raised[0] if raised else None


class ShutdownSignals:
    """Receives SIGTERM/SIGINT on its own thread; sets ``stop`` and starts ``deadline``.

    ``install()`` must run in the main thread before any other thread exists: it blocks the
    signals in the calling thread, which every later thread (librdkafka's, the probes') inherits,
    so only ``sigwait`` here receives them. If the process is still alive ``grace_s`` after the
    budget expired, the thread logs why and ends the process with ``exit_code``.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, stop: threading.Event, deadline: Deadline, budget_s: float, *,
                 exit_code: int, grace_s: float = 0.0) -> None:
        self.stop, self.deadline, self.budget_s = stop, deadline, budget_s
        self.exit_code, self.grace_s = exit_code, grace_s
        self.done = threading.Event()  # set by the main thread once it has cleaned up

    def install(self) -> ShutdownSignals:
        signal.pthread_sigmask(signal.SIG_BLOCK, self.SIGNALS)
        threading.Thread(target=self._wait, name="signals", daemon=True).start()
        return self

    def _wait(self) -> None:
        signum = signal.sigwait(self.SIGNALS)
        self.deadline.start(self.budget_s)
        log.info("stop signal received", extra={"signal": signal.Signals(signum).name,
                                                 "shutdown_budget_s": self.budget_s})
        self.stop.set()
        if self.done.wait(self.budget_s + self.grace_s):
            return
        log.error("shutdown budget spent while a Kafka call was still blocking; exiting now. "
                  "An open transaction is abandoned (the broker aborts it) and its input, "
                  "never committed, is read again", extra={"shutdown_budget_s": self.budget_s,
                                                          "exit_code": self.exit_code})
        logging.shutdown()
        os._exit(self.exit_code)
