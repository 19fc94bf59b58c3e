"""Liveness and readiness of the Graph source (a stream.probes.Probe).

Live: the poll loop turned recently; it beats while it waits out throttling too, so a
throttled tenant is not restarted. Ready: the producer's transactions are initialised (any
previous instance fenced) and the checkpoints are read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class SourceHealth:
    clock: Callable[[], float]
    liveness_timeout_s: float = 600.0
    started: bool = False
    checkpoints_loaded: bool = False
    stopping: bool = False
    last_progress: float | None = None

    def beat(self) -> None:
        self.last_progress = self.clock()

    def live(self) -> bool:
        if self.last_progress is None:
            return True  # starting: the startup probe covers it
        return self.clock() - self.last_progress < self.liveness_timeout_s

    def ready(self) -> bool:
        return self.started and self.checkpoints_loaded and not self.stopping and self.live()

    def status(self) -> dict[str, Any]:
        age = None if self.last_progress is None else round(self.clock() - self.last_progress, 3)
        return {"live": self.live(), "ready": self.ready(), "started": self.started,
                "checkpointsLoaded": self.checkpoints_loaded, "stopping": self.stopping,
                "secondsSinceProgress": age}
