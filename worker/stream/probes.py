"""The worker's one HTTP port: ``/metrics``, ``/healthz`` (liveness), ``/readyz`` (readiness).

Liveness means the consume loop is turning: a restart fixes a stuck loop, not a broker
outage, so an unreachable broker does not fail it. Readiness means the worker can do its
job: Kafka clients initialised, a member of the group (an assignment received since the
last time partitions were lost; an empty one means nothing to do, as for a surge pod during a
rolling update), a broker reachable, no commit hanging, and progress: consumed input is
committed within ``progress_timeout_s`` (or nothing is waiting), and input the client reports
behind our position is consumed within that time too.
Both answer while the broker is down. Nothing else is served.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import orjson
from prometheus_client import CollectorRegistry, make_wsgi_app

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class Probe(Protocol):
    """What the probe endpoints ask; the stream worker's :class:`Health` is one, the Graph
    source has its own."""

    def live(self) -> bool: ...
    def ready(self) -> bool: ...
    def status(self) -> dict[str, Any]: ...


@dataclass(slots=True)
class Health:
    """Loop state read by the probes and the readiness gauge, on their own threads. Only the
    loop thread writes it; everything derived (live, ready) is computed when asked."""

    clock: Callable[[], float]
    liveness_timeout_s: float = 120.0
    # A commit still waiting after this long means the broker is not answering. The loop is
    # blocked in it meanwhile (up to the client's timeouts) and no client callback runs.
    commit_stall_s: float = 5.0
    # Input consumed (or a window aborted) this long ago and still not committed: stuck.
    progress_timeout_s: float = 20.0
    started: bool = False  # clients created and (exactly-once) transactions initialised
    joined: bool = False  # an assignment (possibly empty) since partitions were last lost
    broker_reachable: bool = False
    assigned: int = 0
    last_progress: float | None = None
    commit_started: float | None = None  # set while a commit (or transaction) is under way
    pending_since: float | None = None  # oldest input consumed or aborted and not yet committed
    # The client reported input behind our position and nothing has been consumed since: a
    # worker that holds partitions but never gets their messages is stuck too.
    input_waiting_since: float | None = None
    stopping: bool = False

    def beat(self) -> None:
        self.last_progress = self.clock()

    def live(self) -> bool:
        if self.last_progress is None:
            return True  # still starting: the startup probe covers this phase
        return self.clock() - self.last_progress < self.liveness_timeout_s

    def commit_stalled(self) -> bool:
        since = self.commit_started
        return since is not None and self.clock() - since > self.commit_stall_s

    def stuck(self) -> bool:
        now = self.clock()
        return any(since is not None and now - since > self.progress_timeout_s
                   for since in (self.pending_since, self.input_waiting_since))

    def input_waited(self) -> float | None:
        """Seconds that waiting input has gone unconsumed, or None."""
        since = self.input_waiting_since
        return None if since is None else self.clock() - since

    def ready(self) -> bool:
        return (self.started and self.joined and self.broker_reachable and not self.stopping
                and not self.commit_stalled() and not self.stuck() and self.live())

    def status(self) -> dict[str, Any]:
        age = None if self.last_progress is None else round(self.clock() - self.last_progress, 3)
        return {"live": self.live(), "ready": self.ready(), "started": self.started,
                "joined": self.joined, "brokerReachable": self.broker_reachable,
                "commitStalled": self.commit_stalled(), "stuck": self.stuck(),
                "assignedPartitions": self.assigned, "secondsSinceProgress": age,
                "inputWaitingSeconds": (None if (waited := self.input_waited()) is None
                                        else round(waited, 3)),
                "stopping": self.stopping}


def make_app(registry: CollectorRegistry, health: Probe,
             lock: AbstractContextManager[Any] | None = None) -> Callable[..., Iterable[bytes]]:
    metrics_app = make_wsgi_app(registry)
    guard = lock if lock is not None else contextlib.nullcontext()

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            with guard:  # the exposition is rendered inside this call
                return list(metrics_app(environ, start_response))
        if path in ("/healthz", "/readyz"):
            ok = health.live() if path == "/healthz" else health.ready()
            body = orjson.dumps(health.status())
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
            return [body]
        body = b"not found: this port serves /metrics, /healthz and /readyz\n"
        start_response("404 Not Found", [("Content-Type", "text/plain"),
                                          ("Content-Length", str(len(body)))])
        return [body]

    return app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # probes hit this every few seconds; access logs would drown the useful ones


def serve(address: str, port: int, registry: CollectorRegistry, health: Probe,
          lock: AbstractContextManager[Any] | None = None) -> tuple[WSGIServer, threading.Thread]:
    """Start the HTTP server on a daemon thread. Raises OSError if the port is taken."""
    server = make_server(address, port, make_app(registry, health, lock), _Server,
                         _QuietHandler)
    # shutdown() waits for the serving loop's next poll (0.5 s by default), and the worker
    # stops the server in the last 0.5 s of its shutdown budget: poll well inside that.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="probes", daemon=True)
    thread.start()
    return server, thread
