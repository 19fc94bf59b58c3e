"""How far a job is: a progress bar on a terminal (tqdm: records done, rate, ETA), a JSON log
line every few seconds otherwise (a Kubernetes Job's log has no terminal)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Never, TextIO

from tqdm import tqdm

log = logging.getLogger("worker.jobs")
LOG_EVERY_S = 5.0


class Progress:
    def __init__(self, job: str, total: int, stream: TextIO, clock: Callable[[], float],
                 *, interactive: bool | None = None) -> None:
        self.job, self.total, self.clock = job, total, clock
        self.done, self.started = 0, clock()
        self.next_log = self.started + LOG_EVERY_S
        tty = stream.isatty() if interactive is None else interactive
        self.bar: tqdm[Never] | None = (
            tqdm(total=total, desc=job, unit="msg", file=stream, dynamic_ncols=True)
            if tty else None)

    def advance(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = self.clock()
        if now >= self.next_log:
            self.next_log = now + LOG_EVERY_S
            log.info("progress", extra=self.figures(now))

    def rewind(self, done: int) -> None:
        """After an aborted transaction its messages are read again."""
        if self.bar is not None:
            self.bar.update(done - self.done)
        self.done = done

    def figures(self, now: float) -> dict[str, float | int | str | None]:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        left = max(self.total - self.done, 0)
        return {"job": self.job, "done": self.done, "total": self.total,
                "per_second": round(rate, 1),
                "eta_s": round(left / rate, 1) if rate > 0 else None,
                "elapsed_s": round(elapsed, 1)}

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
