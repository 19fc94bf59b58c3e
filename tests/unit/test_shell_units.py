"""Pure parts of the shell, tested without a broker: commit policy, window bookkeeping,
error classification, metrics tallies and collectors, health and the probe router."""

from __future__ import annotations

import io
import logging
from typing import Any

import orjson
import pytest
from confluent_kafka import KafkaError
from prometheus_client import CollectorRegistry

from worker.classify.core import Source, classify_message
from worker.classify.taxonomy import FailureCategory
from worker.stream.clients import consumer_config, consumer_error_kind, error_kind, producer_config
from worker.stream.commit import CommitPolicy, Window
from worker.stream.logs import JsonFormatter
from worker.stream.metrics import ConsumerLagCollector, Tally, WorkerMetrics, brokers_up
from worker.stream.probes import Health, make_app
from worker.stream.settings import Settings


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_commit_policy_closes_on_time_or_size() -> None:
    policy = CommitPolicy(max_interval_s=0.1, max_messages=3)
    assert not policy.due(5.0, None, 0)
    assert not policy.due(5.05, 5.0, 2)
    assert policy.due(5.2, 5.0, 2)
    assert policy.due(5.01, 5.0, 3)


def test_window_tracks_rewind_points_and_next_offsets() -> None:
    w = Window()
    for offset in (7, 8, 9):
        w.track("t", 0, offset, now=1.0)
    w.track("t", 1, 3, now=2.0)
    assert w.first == {("t", 0): 7, ("t", 1): 3}
    assert [(tp.partition, tp.offset) for tp in w.offsets()] == [(0, 10), (1, 4)]
    assert w.opened_at == 1.0 and w.tally.messages == 4


def test_rewind_covers_unprocessed_messages_but_keeps_earlier_points() -> None:
    w = Window()
    w.track("t", 0, 7, now=1.0)
    for partition, offset in ((0, 8), (0, 9), (1, 40), (1, 41)):  # the rest of the batch
        w.cover("t", partition, offset)
    assert w.first == {("t", 0): 7, ("t", 1): 40}
    assert w.tally.messages == 1  # covering is not processing


@pytest.mark.parametrize(("err", "kind"), [
    (KafkaError(KafkaError._TIMED_OUT, retriable=True), "retriable"),
    (KafkaError(KafkaError._STATE, txn_requires_abort=True), "abortable"),
    (KafkaError(KafkaError._FENCED, fatal=True), "fatal"),
    (KafkaError(KafkaError.INVALID_CONFIG), "fatal"),
])
def test_error_kind_follows_the_confluent_rule(err: KafkaError, kind: str) -> None:
    assert error_kind(err) == kind


def test_consumer_errors_are_transient_unless_fatal_or_auth() -> None:
    assert consumer_error_kind(KafkaError(KafkaError._ALL_BROKERS_DOWN)) == "retriable"
    assert consumer_error_kind(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)) == "retriable"
    assert consumer_error_kind(KafkaError(KafkaError._AUTHENTICATION)) == "fatal"
    assert consumer_error_kind(KafkaError(KafkaError._FATAL, fatal=True)) == "fatal"


def test_client_configs_keep_the_worker_guarantees() -> None:
    s = Settings(kafka_config={"linger.ms": "50",
                               "consumer.fetch.max.bytes": "1000",
                               "producer.batch.size": "2000"})
    c, p = consumer_config(s), producer_config(s)
    assert c["isolation.level"] == "read_committed"
    assert c["enable.auto.commit"] is False
    assert c["partition.assignment.strategy"] == "cooperative-sticky"
    assert c["fetch.max.bytes"] == "1000" and "batch.size" not in c
    assert p["batch.size"] == "2000" and "fetch.max.bytes" not in p
    assert p["linger.ms"] == "50" and p["enable.idempotence"] is True
    assert p["transactional.id"] == s.transactional_id
    assert "transactional.id" not in producer_config(Settings(guarantee="at-least-once"))


def _metrics() -> tuple[CollectorRegistry, WorkerMetrics]:
    registry = CollectorRegistry()
    return registry, WorkerMetrics(registry)


def test_every_category_exists_at_zero_before_any_event() -> None:
    registry, _ = _metrics()
    for c in FailureCategory:
        assert registry.get_sample_value("enrollment_failures_total", {
            "failure_category": c.name, "os": "unknown", "enrollment_type": "unknown"}) == 0.0


def test_tally_is_applied_only_when_recorded_and_labels_stay_closed() -> None:
    registry, metrics = _metrics()
    tally = Tally()
    for raw in (b'{"failureCategory": 4, "operatingSystem": "iOS", "enrollmentType": "x1"}',
                b'{"failureCategory": 4, "operatingSystem": "HoloOS"}', b"broken",
                b'{"failureCategory": "Not Applicable"}'):
        tally.add_all(classify_message(raw, Source("t")), now=1.8e9, fresh_max_age=3600)
    tally.messages = 4
    assert registry.get_sample_value("enrollment_events_total", {"outcome": "classified"}) == 0
    metrics.record(tally)
    get = registry.get_sample_value
    assert get("enrollment_failures_total", {"failure_category": "userValidation", "os": "iOS",
                                             "enrollment_type": "other"}) == 1
    assert get("enrollment_failures_total", {"failure_category": "userValidation",
                                             "os": "other", "enrollment_type": "unknown"}) == 1
    assert get("enrollment_events_total", {"outcome": "dead_lettered"}) == 1
    assert get("enrollment_events_total", {"outcome": "skipped_success"}) == 1
    assert get("enrollment_dead_letters_total", {"error_class": "not_json"}) == 1
    assert get("enrollment_input_messages_total") == 4


def test_hostile_label_values_do_not_create_series() -> None:
    registry, metrics = _metrics()
    tally = Tally()
    for i in range(500):
        raw = orjson.dumps({"failureCategory": 1, "operatingSystem": f"os-{i}",
                            "enrollmentType": f"type-{i}"})
        tally.add_all(classify_message(raw, Source("t")), now=1.8e9, fresh_max_age=3600)
    metrics.record(tally)
    series = [s for m in registry.collect() if m.name == "enrollment_failures"
              for s in m.samples if s.name == "enrollment_failures_total"]
    assert len(series) == 13  # 12 pre-created + one (authentication, other, other)


STATS = orjson.dumps({
    "brokers": {"127.0.0.1:9092/1": {"state": "UP", "nodeid": 1},
                "GroupCoordinator": {"state": "UP", "nodeid": -1}},
    "topics": {"raw": {"partitions": {
        "0": {"fetch_state": "active", "ls_offset": 100, "hi_offset": 100, "app_offset": 95,
              "committed_offset": -1001, "consumer_lag": -1},
        "1": {"fetch_state": "active", "ls_offset": -1, "hi_offset": -1, "app_offset": -1},
        "2": {"fetch_state": "active", "ls_offset": 60, "app_offset": -1001,
              "committed_offset": 50},
        "3": {"fetch_state": "none", "ls_offset": 9, "lo_offset": 0},
        "-1": {"ls_offset": 9, "app_offset": 0}}}}}).decode()


def test_lag_collector_reads_librdkafka_statistics() -> None:
    registry, metrics = _metrics()
    metrics.lag.update(STATS)
    assert registry.get_sample_value("enrollment_consumer_lag_messages",
                                     {"topic": "raw", "partition": "0"}) == 5
    assert registry.get_sample_value("enrollment_consumer_lag_messages",
                                     {"topic": "raw", "partition": "1"}) is None
    assert registry.get_sample_value("enrollment_consumer_lag_messages",
                                     {"topic": "raw", "partition": "2"}) == 10
    for hidden in ("3", "-1"):
        assert registry.get_sample_value("enrollment_consumer_lag_messages",
                                         {"topic": "raw", "partition": hidden}) is None
    metrics.lag.update("not json")  # keeps the last good report
    assert registry.get_sample_value("enrollment_consumer_lag_messages",
                                     {"topic": "raw", "partition": "0"}) == 5
    assert isinstance(metrics.lag, ConsumerLagCollector)


def test_broker_reachability_from_statistics() -> None:
    assert brokers_up(STATS) is True
    down = STATS.replace('"state":"UP","nodeid":1', '"state":"DOWN","nodeid":1')
    assert brokers_up(down) is False
    assert brokers_up("{") is None


def test_health_liveness_and_readiness_with_a_fake_clock() -> None:
    clock = FakeClock()
    h = Health(clock, liveness_timeout_s=60)
    assert h.live() and not h.ready()
    h.started = h.joined = h.broker_reachable = True
    h.beat()
    assert h.ready(), "an empty assignment: nothing to do (a surge pod in a rolling update)"
    h.joined = False  # partitions lost: out of the group until the next assignment
    assert not h.ready()
    h.joined, h.assigned = True, 2
    assert h.ready()
    clock.now += 61
    assert not h.live() and not h.ready()
    h.beat()
    h.broker_reachable = False
    assert h.live() and not h.ready()


def _serving(clock: FakeClock, **limits: float) -> Health:
    """Health of a worker that is up, holds partitions and has just turned its loop."""
    h = Health(clock, **limits)  # type: ignore[arg-type]
    h.started = h.joined = h.broker_reachable = True
    h.assigned = 1
    h.beat()
    return h


def test_a_commit_that_hangs_makes_the_worker_unready_until_it_returns() -> None:
    clock = FakeClock()
    h = _serving(clock, commit_stall_s=5)
    h.commit_started = clock.now
    clock.now += 4
    assert h.ready()  # an ordinary commit takes a moment
    clock.now += 2
    assert not h.ready() and h.status()["commitStalled"] is True
    assert h.live()  # the loop is waiting, not stuck for good: no restart yet
    h.commit_started = None
    assert h.ready()


def test_input_left_uncommitted_too_long_makes_the_worker_unready() -> None:
    clock = FakeClock()
    h = _serving(clock, progress_timeout_s=20)
    h.pending_since = clock.now  # consumed, or a window aborted
    clock.now += 19
    h.beat()
    assert h.ready()
    clock.now += 2
    h.beat()
    assert not h.ready() and h.status()["stuck"] is True and h.live()
    h.pending_since = None  # committed, or idle with nothing left over
    assert h.ready()


def test_readiness_gauge_is_read_at_scrape_time() -> None:
    registry, metrics = _metrics()
    h = Health(FakeClock())
    metrics.report_readiness(h.ready)
    assert registry.get_sample_value("enrollment_worker_ready") == 0
    h.started = h.joined = h.broker_reachable = True
    h.assigned = 1
    h.beat()
    assert registry.get_sample_value("enrollment_worker_ready") == 1


def _call(app: Any, path: str) -> tuple[str, bytes]:
    status: list[str] = []
    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": "GET", "QUERY_STRING": ""},
                        lambda s, _h: status.append(s)))
    return status[0], body


def test_probe_router_serves_only_three_paths() -> None:
    registry, _ = _metrics()
    h = Health(FakeClock())
    app = make_app(registry, h)
    assert _call(app, "/healthz")[0].startswith("200")
    status, body = _call(app, "/readyz")
    assert status.startswith("503") and orjson.loads(body)["ready"] is False
    status, body = _call(app, "/metrics")
    assert status.startswith("200") and b"enrollment_failures_total" in body
    assert _call(app, "/")[0].startswith("404")
    assert _call(app, "/metrics/../secrets")[0].startswith("404")


def test_json_logs_carry_extra_fields() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.json")
    logger.addHandler(handler)
    logger.propagate = False
    logger.warning("window aborted", extra={"error": "boom", "partitions": ["t[0]"]})
    entry = orjson.loads(stream.getvalue())
    assert entry["msg"] == "window aborted" and entry["level"] == "warning"
    assert entry["error"] == "boom" and entry["partitions"] == ["t[0]"]


# ------------------------------------------------------------------ shutdown budget, rate limits
def test_deadline_is_unlimited_until_started_then_caps_every_timeout() -> None:
    from worker.stream.budget import Deadline

    clock = FakeClock()
    d = Deadline(clock)
    assert d.remaining() is None and d.cap(30.0) == 30.0 and not d.spent()
    d.start(25.0)
    clock.now += 10
    assert d.remaining() == 15.0 and d.cap(30.0) == 15.0 and d.cap(2.0) == 2.0
    d.start(100.0)  # a second signal does not extend it
    assert d.remaining() == 15.0
    assert d.remaining(reserve_s=5.0) == 10.0 and d.cap(30.0, reserve_s=5.0) == 10.0
    assert d.spent(reserve_s=20.0) and not d.spent()
    clock.now += 16
    assert d.remaining() == 0.0 and d.cap(30.0) == 0.0 and d.spent()
    assert Deadline(clock).remaining(reserve_s=5.0) is None


def test_rate_limiter_lets_one_line_per_kind_per_interval_and_counts_the_rest() -> None:
    from worker.stream.logs import RateLimiter

    clock = FakeClock()
    limit = RateLimiter(clock, interval_s=30.0)
    assert limit.admit("transport") == 0
    assert [limit.admit("transport") for _ in range(5)] == [None] * 5
    assert limit.admit("timeout") == 0  # another kind has its own interval
    clock.now += 30
    assert limit.admit("transport") == 5  # the next line says how many were left out
    assert limit.admit("transport") is None


def test_rate_limit_filter_keys_librdkafka_lines_by_facility() -> None:
    import logging

    from worker.stream.logs import RateLimiter, RateLimitFilter

    clock = FakeClock()
    filt = RateLimitFilter(RateLimiter(clock, interval_s=10.0))

    def record(name: str, msg: str, **extra: object) -> logging.LogRecord:
        r = logging.LogRecord(name, logging.WARNING, "", 0, msg, (), None)
        r.__dict__.update(extra)
        return r
    fail = "FAIL [thrd:127.0.0.1:9092/bootstrap]: Connect to ipv4#127.0.0.1:9092 failed"
    assert filt.filter(record("librdkafka.producer", fail))
    assert not filt.filter(record("librdkafka.producer", fail.replace("9092", "9093")))
    assert filt.filter(record("librdkafka.producer", "ERROR [thrd:main]: all brokers down"))
    assert filt.filter(record("worker", "partitions assigned"))  # unkeyed: never limited
    assert filt.filter(record("worker", "retrying", rate_key="retry:commit"))
    assert not filt.filter(record("worker", "retrying", rate_key="retry:commit"))
    clock.now += 10
    again = record("worker", "retrying", rate_key="retry:commit")
    assert filt.filter(again) and getattr(again, "repeated", None) == 1


def test_fencing_and_coordinator_ended_transactions_are_told_apart_from_other_errors() -> None:
    from confluent_kafka import KafkaError

    from worker.stream.clients import fenced

    for code in (KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH,
                 KafkaError._FENCED, KafkaError.INVALID_TXN_STATE):
        assert fenced(KafkaError(code, "x", fatal=True))
    assert fenced(KafkaError(KafkaError._FATAL, "Fatal error: Producer fenced by a newer "
                             "instance", fatal=True))
    for code in (KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, KafkaError._TRANSPORT,
                 KafkaError.UNSUPPORTED_VERSION):
        assert not fenced(KafkaError(code, "x"))
    assert not fenced(KafkaError(KafkaError._FATAL, "Fatal error: authorization", fatal=True))


def test_a_renewal_after_the_timeout_drops_every_error_of_the_old_producer() -> None:
    """The freeze seen under CPU load: the lost-partitions callback's abort failed (fenced)
    and was kept for the loop, then poll() raised the same fence first. The renewal must drop
    both, or the fresh producer's first turn re-raises the old error and the worker exits 3."""
    from confluent_kafka import KafkaException

    from worker.stream.commit import FatalKafkaError, TransactionalCommitter
    from worker.stream.loop import StreamWorker

    clock = FakeClock()
    # Clients are only created here, never used: nothing connects to this address.
    settings = Settings(bootstrap_servers="127.0.0.1:1", metrics_port=0)
    worker = StreamWorker(settings, WorkerMetrics(CollectorRegistry()), Health(clock), clock)
    committer = worker.committer
    assert isinstance(committer, TransactionalCommitter)
    committer.in_transaction, committer.began_at = True, clock.now  # as begin_transaction
    clock.now += 61.0  # past librdkafka's default transaction.timeout.ms
    fence = KafkaError(KafkaError._FENCED, "fenced by a newer instance", fatal=True)
    worker.callback_fatal = FatalKafkaError(f"abort_transaction: {fence}", fence)
    worker.fatal = fence
    old_producer = committer.producer
    assert worker._renew_if_fenced_by_timeout(FatalKafkaError(str(KafkaException(fence)), fence))
    assert committer.producer is not old_producer
    worker._raise_fatal()  # nothing left to raise
    assert worker.callback_fatal is None and worker.fatal is None
    worker.consumer.close()


def test_input_waiting_unconsumed_too_long_makes_the_worker_unready() -> None:
    """Partitions held, the client reports messages behind our position, none consumed: the
    worker is not doing its job even though nothing of it is left uncommitted."""
    clock = FakeClock()
    h = _serving(clock, progress_timeout_s=20)
    h.input_waiting_since = clock.now
    clock.now += 19
    h.beat()
    assert h.ready() and h.status()["inputWaitingSeconds"] == 19
    clock.now += 2
    h.beat()
    assert not h.ready() and h.status()["stuck"] is True and h.live()
    h.input_waiting_since = None  # a message arrived
    assert h.ready() and h.status()["inputWaitingSeconds"] is None


def test_lag_collector_sums_what_is_waiting_and_counts_fetch_states() -> None:
    _, metrics = _metrics()
    ours = [("raw", p) for p in range(4)]
    assert metrics.lag.waiting() == 0 and metrics.lag.fetch_states(ours) == {}
    metrics.lag.update(STATS)
    assert metrics.lag.waiting() == 15  # partition 3 is not fetched: no lag of its own
    assert metrics.lag.fetch_states(ours) == {"active": 3, "none": 1}
    assert metrics.lag.fetch_states([("raw", 0), ("other", 0)]) == {"active": 1}
