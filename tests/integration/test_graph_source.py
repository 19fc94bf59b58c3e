"""The Graph source end to end: the real ``python -m worker pull-graph`` against the local
HTTPS fake of Graph's contract (tests/graph_fake.py) and the real broker.

One scenario, shared by the tests below: a first poll; events arrive late (inside the overlap
window), new ones arrive, pages shift so events repeat across pages; the source is SIGKILLed in
the middle of a slow poll; a second instance (same transactional id) starts into throttling
(500 with Intune's text, 429 with Retry-After, a 503 burst) and catches up. read_committed
must then show every event exactly once; the worker classifies what the source published.
"""

from __future__ import annotations

import datetime as dt
import signal
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.graph_events import autopilot_event, troubleshooting_event
from tests.graph_fake import (
    FakeGraph,
    FakeState,
    Fault,
    TlsFiles,
    self_signed,
)
from tests.integration.support import Record, Topics, WorkerProcess, read_topic, wait_for
from worker.dev import devbroker

TENANT, CLIENT, SECRET = "0f1e2d3c-contoso", "9a8b7c6d-app", "fake-client-secret-value"
OVERLAP_S = 3600
TS, AP = "troubleshootingEvents", "autopilotEvents"


@dataclass
class Scenario:
    state: FakeState
    fake: FakeGraph
    tls: TlsFiles
    secret_file: Path
    bootstrap: str
    topics: Topics
    checkpoint_topic: str
    log_dir: Path

    def source(self, *, transactional_id: str, extra: dict[str, str] | None = None,
               once: bool = False) -> WorkerProcess:
        env = {"GRAPH_TENANT_ID": TENANT, "GRAPH_CLIENT_ID": CLIENT,
               "GRAPH_CLIENT_SECRET_FILE": str(self.secret_file),
               "GRAPH_URL": self.fake.url, "GRAPH_AUTHORITY_URL": self.fake.url,
               "GRAPH_CA_FILE": str(self.tls.cert),
               "GRAPH_CHECKPOINT_TOPIC": self.checkpoint_topic,
               "GRAPH_TRANSACTIONAL_ID": transactional_id,
               "GRAPH_POLL_INTERVAL_S": "1", "GRAPH_OVERLAP_S": str(OVERLAP_S),
               "GRAPH_BACKOFF_BASE_S": "0.2", "GRAPH_BACKOFF_CAP_S": "2",
               "GRAPH_REQUESTS_PER_MINUTE": "600", "GRAPH_MAX_ATTEMPTS": "12",
               **(extra or {})}
        command = ("pull-graph", "--once") if once else ("pull-graph",)
        return WorkerProcess(self.bootstrap, self.topics, "unused", env=env,
                             log_dir=self.log_dir, command=command).start()


@dataclass
class Outcome:
    records: list[Record]
    expected: dict[str, dict[str, Any]]  # event id -> the object Graph served
    collection_of: dict[str, str]
    too_old: str  # an id older than the window when it first appeared: never published
    source_logs: str
    source_metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float]  # the second's
    ready_while_running: bool


def _when(minutes: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(hours=2) + dt.timedelta(minutes=minutes)


def _committed(source: WorkerProcess, collection: str) -> float:
    return source.metric_if_up("enrollment_graph_polls_total", collection=collection,
                               result="committed")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return self_signed(tmp_path_factory.mktemp("graph-tls"))


@pytest.fixture(scope="module")
def scenario(tls: TlsFiles, tmp_path_factory: pytest.TempPathFactory,
             kafka_bootstrap: str) -> Iterator[Scenario]:
    # Module scope: the kill-and-restart scenario runs once for the tests below.
    tmp_path = tmp_path_factory.mktemp("graph-source")
    state = FakeState(TENANT, CLIENT, client_secret=SECRET, page_size=4)
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(SECRET + "\n")
    suffix = uuid.uuid4().hex[:10]
    topics = Topics(f"graph-raw-{suffix}", f"graph-out-{suffix}", f"graph-dlq-{suffix}")
    for name, partitions in ((topics.input, 3), (topics.output, 3), (topics.dead, 1)):
        devbroker.create_topics(kafka_bootstrap, [name], partitions, timeout=30.0)
    with FakeGraph(state, tls) as fake:
        # The checkpoint topic is left to the source, which creates it compacted.
        yield Scenario(state, fake, tls, secret_file, kafka_bootstrap, topics,
                       f"graph-checkpoints-{suffix}", tmp_path)


def _events_round(state: FakeState, start: int, count: int, minutes: float) -> None:
    """``count`` events per collection around ``minutes`` (relative to two hours ago)."""
    for n in range(start, start + count):
        state.add(TS, troubleshooting_event(n, _when(minutes + n % 5)))
        state.add(AP, autopilot_event(n, _when(minutes + n % 5), state=(
            "failure" if n % 3 == 0 else "successOnRetry" if n % 7 == 0 else "success")))


def _run_scenario(s: Scenario) -> Outcome:
    state = s.state
    _events_round(state, 0, 10, 60)
    state.add(TS, troubleshooting_event(
        999, _when(61), odata_type="#microsoft.graph.deviceManagementTroubleshootingEvent"))
    state.repeat_across_pages.update({TS, AP})
    txn = f"graph-it-{uuid.uuid4().hex[:8]}"
    first = s.source(transactional_id=txn)
    try:
        wait_for(lambda: _committed(first, TS) >= 1 and _committed(first, AP) >= 1, 90,
                 "the first poll of both collections", interval=0.2)
        # Late arrivals (older than the watermark, inside the window) and new events, then a
        # slow tenant, so the next poll is cut off by SIGKILL half-way through its pages.
        _events_round(state, 100, 6, 40)
        _events_round(state, 200, 6, 90)
        state.delay_s = 0.3
        served = state.count()
        wait_for(lambda: state.count() >= served + 3, 60, "a poll under way", interval=0.05)
        first.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        first.proc.wait(10)  # type: ignore[union-attr]
    finally:
        first.close()
    state.delay_s = 0.0
    too_old = troubleshooting_event(500, _when(-OVERLAP_S / 60 - 30))  # long before the window
    state.add(TS, too_old)
    _events_round(state, 300, 5, 100)
    state.faults.extend([Fault(500), Fault(429, retry_after="1"), Fault(503, body=b""),
                         Fault(503, body=b""), Fault(503, body=b"")])
    expected = {e["id"]: e for c in (TS, AP) for e in state.collections[c]
                if e["id"] != too_old["id"]}
    collection_of = {e["id"]: c for c in (TS, AP) for e in state.collections[c]}
    second = s.source(transactional_id=txn)
    try:
        records = read_topic(s.bootstrap, s.topics.input, expect=len(expected), timeout=180,
                             settle=1.0)
        polls = _committed(second, TS)
        wait_for(lambda: _committed(second, TS) >= polls + 2, 60, "two more polls")
        ready, metrics = second.ready(), second.metrics()
        code, _ = second.terminate()
        assert code == 0, second.logs()
        logs = second.logs()
    finally:
        second.close()
    assert not state.faults, "every scripted fault was served"
    records = read_topic(s.bootstrap, s.topics.input, expect=len(expected), settle=3.0)
    return Outcome(records, expected, collection_of, too_old["id"], logs, metrics, ready)


@pytest.fixture(scope="module")
def outcome(scenario: Scenario) -> Outcome:
    return _run_scenario(scenario)


def test_every_event_once_across_a_kill_throttling_and_late_events(outcome: Outcome) -> None:
    ids = Counter(r.value.get("id") for r in outcome.records)
    assert [i for i, n in ids.items() if n > 1] == []
    assert set(ids) == set(outcome.expected)
    assert outcome.too_old not in ids
    for record in outcome.records:
        event_id = record.value["id"]
        assert record.value == outcome.expected[event_id]  # unchanged, @odata.type included
        assert record.headers["x-graph-collection"].decode() == outcome.collection_of[event_id]
        device = record.value.get("managedDeviceIdentifier") or record.value["deviceId"]
        assert record.key == device.encode()
    assert SECRET not in outcome.source_logs


def test_source_metrics_and_probes(outcome: Outcome) -> None:
    m = outcome.source_metrics

    def total(name: str, **labels: str) -> float:
        return sum(v for (n, ls), v in m.items()
                   if n == name and all(dict(ls).get(k) == x for k, x in labels.items()))

    assert outcome.ready_while_running
    assert total("enrollment_graph_waits_total", reason="throttled") >= 2  # the 500 and the 429
    assert total("enrollment_graph_waits_total", reason="retry") >= 3  # the 503 burst
    assert total("enrollment_graph_requests_total", outcome="throttled") >= 2
    published = total("enrollment_graph_events_published_total")
    assert 0 < published <= len(outcome.expected)
    assert total("enrollment_graph_events_skipped_total", reason="repeated_in_read") >= 1
    assert total("enrollment_graph_events_skipped_total", reason="before_window") >= 1
    for collection in (TS, AP):
        age = total("enrollment_graph_checkpoint_age_seconds", collection=collection)
        assert 0 <= age < 60


@pytest.mark.parametrize(("fault", "expected"), [
    (Fault(401), "did not accept the token"),
    (Fault(403), "DeviceManagementManagedDevices.Read.All"),
])
def test_401_and_403_stop_with_a_clear_error(scenario: Scenario, outcome: Outcome,
                                              fault: Fault, expected: str) -> None:
    # After the scenario (which shares the fake); a fresh tenant checkpoint is not needed.
    scenario.state.faults.append(fault)
    source = scenario.source(transactional_id=f"graph-it-{uuid.uuid4().hex[:8]}", once=True)
    try:
        assert source.proc is not None
        code = source.proc.wait(90)
        assert code == 3, source.logs()
        assert expected in source.logs()
        assert SECRET not in source.logs()
    finally:
        source.close()


def test_once_polls_and_exits(scenario: Scenario, outcome: Outcome) -> None:
    source = scenario.source(transactional_id=f"graph-it-{uuid.uuid4().hex[:8]}", once=True)
    try:
        assert source.proc is not None
        assert source.proc.wait(90) == 0, source.logs()
        assert '"poll committed"' in source.logs() and '"published":0,' in source.logs()
    finally:
        source.close()


@pytest.fixture(scope="module")
def classified(scenario: Scenario, outcome: Outcome) -> Iterator[tuple[Outcome, WorkerProcess,
                                                                        list[Record]]]:
    worker = WorkerProcess(scenario.bootstrap, scenario.topics, f"g-{uuid.uuid4().hex[:8]}",
                           log_dir=scenario.log_dir).start()
    try:
        worker.wait_ready()
        wait_for(lambda: worker.metric("enrollment_input_messages_total")
                 >= len(outcome.records), 120, "the worker to read the input")
        outputs = read_topic(scenario.bootstrap, scenario.topics.output, expect=0, settle=3.0)
        yield outcome, worker, outputs
    finally:
        worker.close()


def test_worker_classifies_enrollment_failures(
        classified: tuple[Outcome, WorkerProcess, list[Record]]) -> None:
    outcome, _, outputs = classified
    by_id = {r.value["id"]: r.value for r in outputs}
    failures = [i for i, e in outcome.expected.items()
                if e["@odata.type"] == "#microsoft.graph.enrollmentTroubleshootingEvent"]
    assert failures
    for event_id in failures:
        assert by_id[event_id]["failureCategory"] == "userValidation"
        assert by_id[event_id]["detailReason"] == "userNotLicensed"


def test_worker_does_not_count_autopilot_successes_as_failures(
        classified: tuple[Outcome, WorkerProcess, list[Record]]) -> None:
    outcome, worker, outputs = classified
    successes = {i for i, e in outcome.expected.items()
                 if e["@odata.type"] == "#microsoft.graph.deviceManagementAutopilotEvent"
                 and e["deploymentState"] in ("success", "successOnRetry")}
    assert successes
    assert not successes & {r.value["id"] for r in outputs}
    assert worker.metric("enrollment_events_total", outcome="skipped_success") >= len(successes)


def test_a_second_instance_fences_the_first(scenario: Scenario, outcome: Outcome) -> None:
    """Two pollers of one tenant at once (a rollout gone wrong, a CronJob next to the
    Deployment): the newer fences the older, which exits 3; every event still lands once."""
    txn = f"graph-it-{uuid.uuid4().hex[:8]}"
    older = scenario.source(transactional_id=txn)
    newer: WorkerProcess | None = None
    try:
        wait_for(lambda: _committed(older, TS) >= 1, 90, "the older instance's first poll")
        _events_round(scenario.state, 400, 4, 110)
        newer = scenario.source(transactional_id=txn)
        assert older.proc is not None
        code = older.proc.wait(90)
        assert code == 3 and "fenced" in older.logs().lower(), older.logs()
        expected = len(outcome.expected) + 8
        records = read_topic(scenario.bootstrap, scenario.topics.input, expect=expected,
                             timeout=120, settle=3.0)
        ids = Counter(r.value["id"] for r in records)
        assert [i for i, n in ids.items() if n > 1] == []
        assert len(ids) == expected
    finally:
        older.close()
        if newer is not None:
            newer.close()


def test_enrollment_activity_report_once(scenario: Scenario, outcome: Outcome) -> None:
    """The optional report: two --once runs over a growing report publish each row once."""
    from tests.graph_events import enrollment_activity_row

    state = scenario.state
    state.report_rows = [enrollment_activity_row(n, _when(60 + n)) for n in range(6)]
    extra = {"GRAPH_COLLECTIONS": "enrollmentActivity", "GRAPH_EXPORT_POLL_S": "0.2"}
    txn = f"graph-it-{uuid.uuid4().hex[:8]}"
    for added in (0, 3):
        state.report_rows += [enrollment_activity_row(100 + added + n, _when(70 + n))
                              for n in range(added)]
        source = scenario.source(transactional_id=txn, extra=extra, once=True)
        try:
            assert source.proc is not None
            assert source.proc.wait(90) == 0, source.logs()
            assert "sig=" not in source.logs(), "the download link's signature was logged"
        finally:
            source.close()
    wanted = {r["EnrollmentActivityId"]: r for r in state.report_rows}
    records = [r for r in read_topic(scenario.bootstrap, scenario.topics.input,
                                     expect=len(outcome.records) + len(wanted), settle=3.0)
               if r.headers.get("x-graph-collection") == b"enrollmentActivity"]
    ids = Counter(r.value["EnrollmentActivityId"] for r in records)
    assert ids == Counter(set(wanted)), ids
    for r in records:
        assert r.value == wanted[r.value["EnrollmentActivityId"]]
