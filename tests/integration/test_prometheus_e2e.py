"""End to end with a real Prometheus: Debian's ``prometheus`` server scrapes a real worker that
consumes from the real broker, and evaluates the alerting rules of
deploy/prometheus/rules/enrollment-classifier.rules.yaml with every window divided by 60
(tests/deploy/rules_render.py: [5m] -> [5s], [1h] offset 5m -> [1m] offset 5s, for: 10m -> 10s,
lookback delta 5s). Everything is read back through Prometheus's HTTP API.

The alert test sends steady failures of one category and then one failure of an expired
Apple push certificate: the urgent-reason rule (increase over 30 s, "for" 1 s once rendered)
fires for it alone, and Prometheus's own ALERTS series shows that no other failure alert was
even pending (the spike rules need a week of baseline, which a live test cannot have; their
detection is scored on a simulated month instead: docs/alerting.md). About a minute.

A test without a broker checks the worker's real exposition with ``promtool check metrics``.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import orjson
import pytest
from confluent_kafka import Producer

from tests.deploy import rules_render
from tests.deploy.metric_names import known_metric_names, sample_names, worker_exposition
from tests.integration.support import (
    Topics,
    WorkerProcess,
    free_port,
    produce_samples,
    samples,
    wait_for,
)
from worker.classify.taxonomy import FailureCategory

T = TypeVar("T")

JOB = "enrollment-classifier"  # the job name of tests/deploy/prometheus-e2e.yml.tmpl
SPIKE = "EnrollmentFailureCategorySpike"
URGENT = "EnrollmentUrgentFailureReason"
CATEGORIES = tuple(c.name for c in FailureCategory)

STEADY = "userValidation"  # the steady traffic of the alert test
FIRING_TIMEOUT_S = 60.0  # the urgent rule: a 30 s window, 1 s "for", 1 s evaluations


# --- tools ----------------------------------------------------------------------------------


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _missing(what: str) -> NoReturn:
    message = f"{what} is not installed (Debian package 'prometheus'; scripts/test.sh installs it)"
    if _in_ci():
        pytest.fail(f"CI is set, so a missing tool is an error: {message}", pytrace=False)
    pytest.skip(message)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        _missing(name)
    return path


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def poll(read: Callable[[], T], done: Callable[[T], bool], timeout: float, what: str, *,
         interval: float = 0.5, context: Callable[[], str] = lambda: "") -> T:
    """Call ``read`` until ``done(value)``; fail with the last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; "
                                 f"last value: {value!r}\n{context()}")
        time.sleep(interval)


# --- a throwaway Prometheus -------------------------------------------------------------------


class PrometheusServer:
    """Debian's Prometheus on 127.0.0.1 (free port, temporary TSDB) scraping one target every
    second and evaluating the short-window rules every second."""

    def __init__(self, binary: str, promtool: str, target: str, workdir: Path) -> None:
        self.binary, self.promtool, self.target = binary, promtool, target
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "prometheus.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PrometheusServer:
        rules = rules_render.write_short_window_rules(self.workdir / "short.rules.yaml")
        config = self.workdir / "prometheus.yml"
        config.write_text(rules_render.render_prometheus_config(self.target, rules),
                          encoding="utf-8")
        checked = subprocess.run([self.promtool, "check", "config", str(config)],
                                 capture_output=True, text=True, timeout=60, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        self.port = free_port()
        argv = rules_render.prometheus_command(config, self.workdir / "tsdb",
                                               listen=f"127.0.0.1:{self.port}",
                                               binary=self.binary)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(argv, cwd=self.workdir, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        poll(self._ready_or_dead, bool, 60, "Prometheus to become ready", context=self.logs)
        assert self.alive(), f"Prometheus exited:\n{self.logs()}"
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _ready_or_dead(self) -> bool:
        if not self.alive():
            return True
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as r:
                body = orjson.loads(r.read())
        except urllib.error.HTTPError as exc:
            with exc:
                raise AssertionError(f"{path} {params}: HTTP {exc.code} {exc.read()!r}") from exc
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        data = self.api("query", **params)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    def by_label(self, expr: str, label: str, at: float | None = None) -> dict[str, float]:
        """An instant vector as {value of ``label``: sample value}."""
        return {s["metric"].get(label, ""): float(s["value"][1]) for s in self.query(expr, at)}

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.api("alerts")["alerts"]
        return alerts

    def alerting_rules(self) -> dict[str, dict[str, Any]]:
        groups = self.api("rules", type="alert")["groups"]
        return {rule["name"]: rule for group in groups for rule in group["rules"]}

    def logs(self) -> str:
        return f"--- prometheus log ---\n{_tail(self.log_path)}"

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class Stack:
    """The worker processes and Prometheus servers of one test; stopped in that order's
    reverse by the fixture, whatever happens."""

    def __init__(self, bootstrap: str, workdir: Path) -> None:
        self.bootstrap, self.workdir = bootstrap, workdir
        self.workers: list[WorkerProcess] = []
        self.servers: list[PrometheusServer] = []

    def worker(self, topics: Topics) -> WorkerProcess:
        worker = WorkerProcess(self.bootstrap, topics, f"it-group-{uuid.uuid4().hex[:12]}",
                               log_dir=self.workdir)
        self.workers.append(worker)
        return worker.start().wait_ready(timeout=90)

    def prometheus(self, worker: WorkerProcess) -> PrometheusServer:
        server = PrometheusServer(_tool("prometheus"), _tool("promtool"),
                                  f"127.0.0.1:{worker.port}",
                                  self.workdir / f"prometheus-{len(self.servers)}")
        self.servers.append(server)
        return server.start()

    def logs(self) -> str:
        return "\n".join([*(s.logs() for s in self.servers),
                          *(f"--- worker log ---\n{w.logs()}" for w in self.workers)])

    def close(self) -> None:
        try:
            for server in self.servers:
                server.stop()
        finally:
            for worker in self.workers:
                if worker.alive():
                    with contextlib.suppress(subprocess.TimeoutExpired):  # close() kills it
                        worker.terminate(30)
                worker.close()


@pytest.fixture(scope="session")
def prometheus_binaries() -> tuple[str, str]:
    """Requested before the broker, so a missing Prometheus skips (or fails) before it starts."""
    return _tool("prometheus"), _tool("promtool")


@pytest.fixture
def stack(prometheus_binaries: tuple[str, str], kafka_bootstrap: str,
          tmp_path: Path) -> Iterator[Stack]:
    started = Stack(kafka_bootstrap, tmp_path)
    try:
        yield started
    finally:
        started.close()



def flat_event(category: str, note: str) -> bytes:
    return orjson.dumps({"id": f"e2e-{uuid.uuid4()}", "failureCategory": category,
                         "failureReason": f"end-to-end test: {note}"})


def wait_first_scrape(prometheus: PrometheusServer) -> None:
    poll(lambda: prometheus.by_label(f'up{{job="{JOB}"}}', "job"), lambda v: v == {JOB: 1.0},
         30, "the first successful scrape of the worker", context=prometheus.logs)


# --- 1. per-category values ---------------------------------------------------------------


@pytest.mark.slow
def test_prometheus_sees_the_per_category_counts_the_worker_published(
        stack: Stack, topics: Callable[[int], Topics]) -> None:
    t = topics(2)
    produced = produce_samples(stack.bootstrap, t.input, samples(400, seed=41))
    counts = produced.counts()
    # A few minimal events on top, so some categories have counts known by construction.
    crafted = {"userValidation": 7, "deviceNotSupported": 3, "inMaintenance": 1}
    producer = Producer({"bootstrap.servers": stack.bootstrap, "linger.ms": 5})
    for category, n in crafted.items():
        for i in range(n):
            producer.produce(t.input, flat_event(category, f"crafted {i}"))
    assert producer.flush(30) == 0

    expected_categories = {c: float(counts[f"category.{c}"] + crafted.get(c, 0))
                           for c in CATEGORIES}
    classified = counts["classified"] + sum(crafted.values())
    expected_outcomes = {"classified": float(classified),
                         "dead_lettered": float(counts["dead_letter"]),
                         "skipped_success": float(counts["skipped_success"]),
                         "skipped_other": float(counts["skipped_in_progress"]
                                                + counts["skipped_not_enrollment"])}
    expected_inputs = float(len(produced.expected) + sum(crafted.values()))
    assert counts["dead_letter"] > 0 and counts["skipped_success"] > 0
    assert sum(v > 0 for v in expected_categories.values()) >= 8, expected_categories

    worker = stack.worker(t)
    prometheus = stack.prometheus(worker)
    wait_first_scrape(prometheus)

    by_category = f'sum by (failure_category) (enrollment_failures_total{{job="{JOB}"}})'
    by_outcome = f'sum by (outcome) (enrollment_events_total{{job="{JOB}"}})'
    inputs = f'sum(enrollment_input_messages_total{{job="{JOB}"}})'

    def seen() -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
        return (prometheus.by_label(by_category, "failure_category"),
                prometheus.by_label(by_outcome, "outcome"),
                prometheus.by_label(inputs, "job"))

    # The worker applies a window's counts only once it commits, counter by counter, so one
    # scrape may catch it half-way: wait for a scrape that has all of them.
    final = poll(seen,
                 lambda v: v == (expected_categories, expected_outcomes, {"": expected_inputs}),
                 120, "Prometheus to hold every published count", interval=1.0,
                 context=lambda: f"expected {expected_categories}\n{expected_outcomes}\n"
                                 f"inputs {expected_inputs}\n{stack.logs()}")
    assert final[0] == expected_categories
    # All twelve categories exist (pre-created at 0) and nothing else does.
    assert set(final[0]) == set(CATEGORIES)

    # Prometheus's numbers are the worker's own.
    for category in CATEGORIES:
        assert worker.metric_sum("enrollment_failures_total", failure_category=category) == \
            expected_categories[category], category

    # The live exposition, after real traffic, passes promtool's linter ...
    code, body = worker.get("/metrics")
    assert code == 200
    lint = subprocess.run([_tool("promtool"), "check", "metrics"], input=body,
                          capture_output=True, timeout=60, check=False)
    assert lint.returncode == 0 and not lint.stdout.strip(), lint.stdout + lint.stderr
    # ... and exposes exactly the names the deploy/ checks were given, the consumer-lag gauge
    # included (measured from the worker's position, so it works in exactly-once mode too),
    # and the lag has drained to zero now that everything was processed.
    wait_for(lambda: sample_names(worker.get("/metrics")[1].decode()) == known_metric_names(),
             30, "every metric name, lag included, on the live /metrics")
    wait_for(lambda: worker.metric_sum("enrollment_consumer_lag_messages") == 0, 30,
             "consumer lag to reach zero")

    assert worker.terminate()[0] == 0, worker.logs()


# --- 2. an urgent failure reason fires at once, steady traffic fires nothing ----------------
# The spike rules compare a category with a week of its own history, which a test cannot
# wait for even with every window divided by 60; their detection is scored on a simulated
# month in a real Prometheus (bench/alerting, tests/deploy/test_alert_scoring.py). Here the
# real worker and the production rules meet: the urgent-reason rule reads the pre-created
# detail counter, so the very first expired-certificate failure pages.


def test_an_urgent_reason_fires_while_steady_traffic_stays_quiet(
        stack: Stack, topics: Callable[[int], Topics]) -> None:
    t = topics(1)
    worker = stack.worker(t)
    prometheus = stack.prometheus(worker)
    rules = poll(prometheus.alerting_rules, lambda r: URGENT in r and SPIKE in r, 30,
                 "the rules to load", context=prometheus.logs)
    assert "[30s]" in rules[URGENT]["query"] and "[30m]" not in rules[URGENT]["query"], rules
    wait_first_scrape(prometheus)
    producer = Producer({"bootstrap.servers": stack.bootstrap, "linger.ms": 0})
    for i in range(12):
        producer.produce(t.input, flat_event(STEADY, f"steady {i}"))
    assert producer.flush(10) == 0
    wait_for(lambda: prometheus.by_label(
        f'sum by (failure_category) (enrollment_category_failures_total{{job="{JOB}"}})',
        "failure_category").get(STEADY) == 12, 60, "the steady failures in Prometheus")
    steady_seen_at = time.time()

    urgent_at = time.time()
    producer.produce(t.input, orjson.dumps({
        "id": f"e2e-{uuid.uuid4()}", "failureCategory": "unknown",
        "failureReason": "APNSCertificateExpired"}))
    assert producer.flush(10) == 0
    firing = poll(prometheus.alerts, lambda alerts: any(
        a["labels"].get("alertname") == URGENT and a["state"] == "firing" for a in alerts),
        FIRING_TIMEOUT_S, f"{URGENT} to fire", context=stack.logs)
    alert = next(a for a in firing if a["labels"].get("alertname") == URGENT)
    assert alert["labels"]["detail_reason"] == "apnsCertificateExpired", alert
    assert alert["labels"]["failure_category"] == "accountValidation", alert
    assert alert["labels"]["severity"] == "critical", alert
    assert alert["annotations"]["runbook_url"] == \
        "deploy/RUNBOOK.md#enrollmenturgentfailurereason", alert
    assert _rfc3339_seconds(alert["activeAt"]) >= urgent_at - 1, (alert, urgent_at)
    # From Prometheus's own record: no failure alert but the urgent one was ever even pending.
    window = max(1, math.ceil(time.time() - steady_seen_at) + 30)
    fired = prometheus.by_label(
        f'count by (alertname) (count_over_time(ALERTS{{alertname=~"EnrollmentFailure.*|'
        f'EnrollmentUnknown.*|{URGENT}"}}[{window}s]))', "alertname")
    assert set(fired) == {URGENT}, fired
    assert worker.terminate()[0] == 0, worker.logs()


def _rfc3339_seconds(text: str) -> float:
    """Unix seconds of an RFC 3339 timestamp as Prometheus writes it (nanoseconds allowed)."""
    head, _, rest = text.partition(".")
    fraction = ""
    if rest:
        digits = "".join(ch for ch in rest if ch.isdigit())
        fraction, rest = f".{digits[:6]}", rest[len(digits):]
    return datetime.fromisoformat(f"{head}{fraction}{rest.replace('Z', '+00:00')}").timestamp()


# --- the worker's exposition, without a broker ---------------------------------------------


def test_worker_exposition_passes_promtool_check_metrics() -> None:
    """The worker's real metric declarations (tests/deploy/metric_names.worker_exposition(),
    the source of known_metric_names()) are clean for promtool's linter."""
    promtool = _tool("promtool")
    text = worker_exposition()
    assert "enrollment_consumer_lag_messages{" in text  # the lag gauge has a sample
    result = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                            capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not result.stdout.strip() and not result.stderr.strip(), result.stdout + result.stderr
    names = known_metric_names()
    assert {"enrollment_failures_total", "enrollment_consumer_lag_messages",
            "enrollment_batch_duration_seconds_bucket"} <= names
