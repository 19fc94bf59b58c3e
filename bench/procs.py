"""The contender processes: started, watched (resident memory, CPU time) and stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent


class Monitor:
    """Samples a process's RSS and CPU time (also per thread group: the Python main thread,
    librdkafka's threads, the rest); ``peak_mb`` prefers the kernel's VmHWM."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid, self.interval = pid, interval
        # (wall s, rss MB, cpu s, cpu s by thread group)
        self.samples: list[tuple[float, float, float, dict[str, float]]] = []
        self.hwm_mb: float | None = None
        self._groups: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _group(self, tid: int) -> str:
        if tid not in self._groups:
            try:
                name = Path(f"/proc/{self.pid}/task/{tid}/comm").read_text().strip()
            except OSError:
                name = ""
            self._groups[tid] = ("python main" if tid == self.pid else
                                 "librdkafka" if name.startswith("rdk:") else "other")
        return self._groups[tid]

    def _run(self) -> None:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(self.pid)
            while not self._stop.is_set():
                with proc.oneshot():
                    cpu = proc.cpu_times()
                    groups: dict[str, float] = {}
                    for t in proc.threads():
                        g = self._group(t.id)
                        groups[g] = groups.get(g, 0.0) + t.user_time + t.system_time
                    self.samples.append((time.time(), proc.memory_info().rss / 2**20,
                                         cpu.user + cpu.system, groups))
                self._stop.wait(self.interval)

    def read_hwm(self) -> None:
        """VmHWM (peak resident set) from /proc; call while the process is still alive."""
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.hwm_mb = int(line.split()[1]) / 1024

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def peak_mb(self) -> float | None:
        polled = max((s[1] for s in self.samples), default=None)
        return self.hwm_mb if self.hwm_mb is not None else polled

    def cpu_between(self, start: float, end: float) -> float | None:
        """CPU seconds used between two wall-clock times (nearest samples outside them)."""
        pair = self._around(start, end)
        return None if pair is None else pair[1][2] - pair[0][2]

    def threads_between(self, start: float, end: float) -> dict[str, float] | None:
        """CPU seconds by thread group between two wall-clock times; threads that ended in
        between are missing, so the groups may sum to less than cpu_between()."""
        pair = self._around(start, end)
        if pair is None:
            return None
        before, after = pair[0][3], pair[1][3]
        return {g: round(v - before.get(g, 0.0), 3) for g, v in sorted(after.items())}

    def _around(self, start: float, end: float) -> tuple[Any, Any] | None:
        before = [s for s in self.samples if s[0] <= start]
        after = [s for s in self.samples if s[0] >= end]
        return (before[-1], after[0]) if before and after else None


class Contender:
    """One contender process: started, watched, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.cmd, self.env = name, cmd, env
        self.log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.monitor: Monitor | None = None
        self.exit_code: int | None = None

    def start(self) -> Contender:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        self.monitor = Monitor(self.proc.pid)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.monitor is not None:
            self.monitor.read_hwm()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.monitor is not None:
            self.monitor.stop()
        self.exit_code = self.proc.returncode
        return self.exit_code

    def log_tail(self, chars: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""


@contextlib.contextmanager
def running(contender: Contender) -> Iterator[Contender]:
    contender.start()
    try:
        yield contender
    finally:
        contender.stop()


def base_env() -> dict[str, str]:
    """The environment for child processes, without anything that would redirect Kafka."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("KAFKA_", "CLASSIFIER_", "RDKAFKA_"))}
