"""Issue 17 on the real worker: after a restart, the first failure of a label combination
never seen before is counted by ``increase()`` in a real Prometheus scraping the worker.

``rate()`` and ``increase()`` never count a series' first sample, so a counter series that
appears at 1 hides its first failure. The worker pre-creates every series the alert rules
read at zero; this test restarts it (same scrape address, group and transactional id, as a
restarted pod) and sends one failure of a category and detail reason the Prometheus has
never seen counted, plus one late failure. The breakdown counter, whose OS/enrollment-type
combinations appear on first use, shows the hazard the pre-created counters remove: its new
series is born at 1 and its increase() is 0.

Built on the Prometheus rig of test_prometheus_e2e.py (Debian's ``prometheus``, 1 s scrapes,
5 s lookback). Every wait polls Prometheus's HTTP API with a deadline.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from tests.integration.support import Topics, WorkerProcess
from tests.integration.test_prometheus_e2e import (
    JOB,
    PrometheusServer,
    Stack,
    _tool,
    poll,
    wait_first_scrape,
)

SEEN = "userValidation"  # counted before the restart
NEW, NEW_DETAIL, NEW_REASON = "enrollmentRestrictionsEnforced", "deviceCap", "0x80180013"
LATE = "inMaintenance"  # one failure two days old: late, not fresh
WINDOWS = {"operatingSystem": "Windows", "enrollmentType": "windowsAutoEnrollment"}


@pytest.fixture
def rig(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stack]:
    for tool in ("prometheus", "promtool"):  # skip (or fail under CI) before any process
        _tool(tool)
    stack = Stack(kafka_bootstrap, tmp_path)
    try:
        yield stack
    finally:
        stack.close()


def _failure(category: str, reason: str, at: float) -> bytes:
    return orjson.dumps({
        "id": f"restart-{uuid.uuid4()}", "failureCategory": category, "failureReason": reason,
        "eventDateTime": datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **WINDOWS})


def _produce(bootstrap: str, topic: str, *values: bytes) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for value in values:
        producer.produce(topic, value)
    assert producer.flush(30) == 0


def _value(prometheus: PrometheusServer, expr: str) -> float | None:
    """The single value of an instant query, None when it returns no series."""
    result = prometheus.query(expr)
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None


def _sel(metric: str, **labels: str) -> str:
    matchers = ",".join(f'{k}="{v}"' for k, v in {"job": JOB, **labels}.items())
    return f"{metric}{{{matchers}}}"


CATEGORY = "enrollment_category_failures_total"
DETAILS = "enrollment_failure_details_total"
BREAKDOWN = "enrollment_failures_total"


@pytest.mark.slow
def test_after_a_restart_the_first_failure_of_a_new_combination_is_counted_by_increase(
        rig: Stack, topics: Callable[[int], Topics]) -> None:
    t = topics(1)
    group, txn_id = f"it-group-{uuid.uuid4().hex[:12]}", f"it-{uuid.uuid4().hex}"

    def launch(port: int | None = None) -> WorkerProcess:
        worker = WorkerProcess(rig.bootstrap, t, group, transactional_id=txn_id,
                               log_dir=rig.workdir, port=port)
        rig.workers.append(worker)
        return worker.start().wait_ready(timeout=90)

    first = launch()
    prometheus = rig.prometheus(first)
    wait_first_scrape(prometheus)
    seen_fresh = _sel(CATEGORY, failure_category=SEEN, freshness="fresh")

    def value_is(expr: str, expected: float, timeout: float = 90) -> None:
        poll(lambda: _value(prometheus, expr), lambda v: v == expected, timeout,
             f"{expr} == {expected}", interval=0.5, context=rig.logs)

    # 1. The first process counts some failures of another category, and Prometheus sees them.
    now = time.time()
    _produce(rig.bootstrap, t.input, *(_failure(SEEN, "0x80180018", now) for _ in range(3)))
    value_is(seen_fresh, 3)
    assert first.terminate()[0] == 0, first.logs()

    # 2. The restarted worker serves on the same address; Prometheus scrapes its zeros (the
    # seen category reset from 3) before the new failure exists.
    second = launch(port=first.port)
    value_is(seen_fresh, 0)
    new_fresh = _sel(CATEGORY, failure_category=NEW, freshness="fresh")
    new_detail = _sel(DETAILS, failure_category=NEW, detail_reason=NEW_DETAIL)
    late = _sel(CATEGORY, failure_category=LATE, freshness="late")
    for expr in (new_fresh, new_detail, late):
        assert _value(prometheus, expr) == 0.0, expr  # the series exist, at zero
    new_breakdown = _sel(BREAKDOWN, failure_category=NEW, os="Windows",
                         enrollment_type="windowsAutoEnrollment")
    assert _value(prometheus, new_breakdown) is None  # appears on first use

    # 3. One failure of the new combination, and one two days late.
    sent_at = time.time()
    _produce(rig.bootstrap, t.input, _failure(NEW, NEW_REASON, sent_at),
             _failure(LATE, "maintenance window", sent_at - 2 * 86400))
    for expr in (new_fresh, new_detail, late, new_breakdown):
        value_is(expr, 1)

    # 4. increase() over a window reaching back before the failure counts it (Prometheus's
    # extrapolation can only make it larger), for both alerting counters ...
    def increase(expr: str) -> float | None:
        window = max(10, int(time.time() - sent_at) + 10)  # from before the failure to now
        return _value(prometheus, f"sum(increase({expr}[{window}s]))")

    for expr in (new_fresh, new_detail, late):
        got = poll(partial(increase, expr), lambda v: v is not None and v >= 1.0,
                   30, f"increase({expr}) >= 1", context=rig.logs)
        assert got is not None and got < 2.5, (expr, got)  # one failure, extrapolated
    assert increase(_sel(CATEGORY, failure_category=NEW, freshness="late")) == 0
    assert increase(_sel(CATEGORY, failure_category=LATE, freshness="fresh")) == 0
    # ... while the breakdown's new series, born at 1, hides it: why rules must not read it.
    assert increase(_sel(BREAKDOWN, failure_category=NEW)) == 0
    assert second.terminate()[0] == 0, second.logs()
