"""Reliability against a real broker (issue 13): a bounded shutdown whatever the broker does,
outages of any length, a freeze past the transaction timeout.

Each scenario prints one figure line like test_faults.py::

    RELIABILITY <scenario>: messages=... events=... received=... lost=... duplicated=... ...

Outputs are read with ``isolation.level=read_committed`` and judged against the oracle
(``worker.dev.samples``); ids are checked to be unique among distinct events.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.faults_rig import (
    Collector,
    Feed,
    Figures,
    ReadyPoller,
    Rig,
    figures,
    progress,
    report,
)
from tests.integration.support import (
    Produced,
    Record,
    Topics,
    WorkerProcess,
    check_against_oracle,
    free_port,
    produce_samples,
    samples,
    wait_for,
)
from worker.dev import devbroker

pytestmark = pytest.mark.slow

BUDGET_S = 25.0  # the worker's default --shutdown-budget-ms
OUTAGE_S = 300.0


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.close()


def _private_broker(rig: Rig, tag: str) -> tuple[devbroker.LocalKafka, Topics]:
    broker = devbroker.LocalKafka()  # private: these tests kill it
    rig.later(broker.close)
    broker.start()
    t = Topics(f"raw-{tag}", f"out-{tag}", f"dlq-{tag}")
    broker.create_topics([t.input, t.output], partitions=3)
    broker.create_topics([t.dead], partitions=1)
    return broker, t


def _ids_unique(outputs: list[Record]) -> int:
    """Distinct events (by source coordinates) never share an id; returns the id count."""
    by_id: dict[str, set[tuple[int, int, int]]] = {}
    for r in outputs:
        s = r.value["source"]
        by_id.setdefault(r.value["id"], set()).add(
            (s["partition"], s["offset"], s["recordIndex"] or 0))
    merged = {i: c for i, c in by_id.items() if len(c) > 1}
    assert not merged, list(merged.items())[:5]
    return len(by_id)


def _finish(rig: Rig, feed: Feed, collector: Collector) -> tuple[Figures, list[Record],
                                                                  list[Record], Produced]:
    return _collect(collector, feed.finish())


def _collect(collector: Collector, produced: Produced) -> tuple[Figures, list[Record],
                                                                 list[Record], Produced]:
    """Every expected record read back (or the timeout), then the figures."""
    collector.wait_complete(produced, timeout=180)
    collector.stop()
    assert collector.error is None, repr(collector.error)
    outputs, dead = collector.records()
    return figures(outputs, dead, produced), outputs, dead, produced


def _judge(rig: Rig, f: Figures, outputs: list[Record], dead: list[Record],
           produced: Produced) -> None:
    assert f.lost == 0 and f.duplicated == 0 and f.unexpected == 0, (f, rig.logs())
    check_against_oracle(outputs, dead, produced)
    _ids_unique(outputs)


def _no_traceback(worker: WorkerProcess) -> str:
    log = worker.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]
    return log


# ---------------------------------------------------------------------------------- shutdown
def test_sigterm_with_the_broker_unreachable_from_the_start(rig: Rig) -> None:
    t = Topics("raw-none", "out-none", "dlq-none")
    worker = rig.worker(f"127.0.0.1:{free_port()}", t, "none-group")  # nothing listens there
    wait_for(lambda: worker.get("/healthz")[0] == 200 or not worker.alive(), 60, "the port")
    time.sleep(20.0)  # it keeps retrying init_transactions meanwhile
    assert worker.alive() and not worker.ready(), worker.logs()
    code, took = worker.terminate(timeout=BUDGET_S + 30)
    lines = worker.log_path.read_text(errors="replace").splitlines()
    kinds = Counter(line.split('"msg":"', 1)[-1].split('"', 1)[0] for line in lines)
    print(f"\nRELIABILITY sigterm-broker-never-up: exit={code} exit_s={took:.1f} "
          f"log_lines={len(lines)} up_s=20 by_message={dict(kinds.most_common(4))}")
    assert code == 0 and took < BUDGET_S, (code, took, worker.logs())
    assert len(lines) < 40, "repeated client errors must be rate limited"
    _no_traceback(worker)


def test_sigterm_with_the_broker_killed_mid_run_exits_in_budget_and_loses_nothing(
        rig: Rig) -> None:
    broker, t = _private_broker(rig, "term")
    # A backlog, so that the worker still holds prefetched input when the broker dies: its
    # windows keep opening and their commits hang when SIGTERM arrives.
    produced = produce_samples(broker.bootstrap, t.input, samples(8000, seed=1301))
    txn_id = f"it-{uuid.uuid4().hex}"
    worker = rig.worker(broker.bootstrap, t, "term-group", transactional_id=txn_id,
                        env={"CLASSIFIER_BATCH_SIZE": "50"})
    wait_for(lambda: progress(worker) > 200 or not worker.alive(), 120, "progress")
    broker.kill()  # SIGKILL
    time.sleep(6.0)
    assert worker.alive(), worker.logs()
    code, took = worker.terminate(timeout=BUDGET_S + 30)
    log = _no_traceback(worker)
    assert code == 0 and took < BUDGET_S, (code, took, worker.logs())
    hanging = "retrying Kafka operation" in log or "commit window aborted" in log

    broker.start()  # the same data dir and ports; a new worker (the restarted pod) goes on
    collector = Collector(broker.bootstrap, t).start()
    rig.later(collector.stop)
    successor = rig.worker(broker.bootstrap, t, "term-group", transactional_id=txn_id)
    rig.wait(lambda: progress(successor) > 0 or not successor.alive(), 120,
             "the successor to make progress", successor)
    collector.wait_complete(produced, timeout=180)
    collector.stop()
    assert collector.error is None, repr(collector.error)
    outputs, dead = collector.records()
    f = figures(outputs, dead, produced)
    report("sigterm-broker-killed-eos", f, exit_code=code, exit_s=took,
           commit_hanging_at_sigterm=hanging,
           abandoned='"abandoned_transaction":true' in log)
    assert hanging, "SIGTERM did not meet a hanging commit; the scenario did not happen"
    _judge(rig, f, outputs, dead, produced)
    assert successor.terminate()[0] == 0, successor.logs()


# ---------------------------------------------------------------------------------- outage
def test_five_minute_broker_outage_is_ridden_out_and_resumed(rig: Rig) -> None:
    broker, t = _private_broker(rig, "long")
    # Input sent before the outage (a backlog: windows are open when the broker dies) and after
    # it; a producer thread could not keep its messages through five minutes either.
    produced = produce_samples(broker.bootstrap, t.input, samples(8000, seed=1302))
    worker = rig.worker(broker.bootstrap, t, "long-group",
                        env={"CLASSIFIER_BATCH_SIZE": "50"}).wait_ready(90)
    poller = ReadyPoller(worker).start()
    rig.later(poller.stop)
    wait_for(lambda: progress(worker) > 200, 60, "progress before the outage")
    before = progress(worker)
    broker.kill()
    killed_at = time.monotonic()
    rig.wait(lambda: poller.first(False, killed_at) is not None, 60, "/readyz to go false",
             worker)
    deadline = killed_at + OUTAGE_S
    while time.monotonic() < deadline:  # alive and serving probes throughout
        assert worker.alive(), worker.logs()
        time.sleep(5.0)
    ready_during = [at for at, ready in list(poller.transitions)
                    if ready and killed_at + 30 < at < deadline]
    broker.start()
    up_at = time.monotonic()
    rig.wait(lambda: (progress(worker) > before and worker.ready()) or not worker.alive(), 180,
             "the worker to resume after the outage", worker)
    resumed_s = time.monotonic() - up_at
    produce_samples(broker.bootstrap, t.input, samples(1000, seed=1312), produced)
    collector = Collector(broker.bootstrap, t).start()
    rig.later(collector.stop)
    collector.wait_complete(produced, timeout=240)
    collector.stop()
    poller.stop()
    assert collector.error is None, repr(collector.error)
    outputs, dead = collector.records()
    f = figures(outputs, dead, produced)
    log = _no_traceback(worker)
    report("outage-5min-eos", f, down_s=up_at - killed_at, recover_s=resumed_s,
           readyz_false_after_kill_s=(poller.first(False, killed_at) or 0) - killed_at,
           ready_while_down=len(ready_during),
           fresh_producer="fresh producer" in log, log_lines=len(log.splitlines()))
    assert not ready_during, poller.transitions
    _judge(rig, f, outputs, dead, produced)
    code, took = worker.terminate(timeout=BUDGET_S + 30)
    assert code == 0 and took < BUDGET_S, (code, took, worker.logs())


# ---------------------------------------------------------------------------------- freeze
def test_frozen_past_the_transaction_timeout_goes_on_with_a_fresh_producer(
        kafka_bootstrap: str, topics: Callable[[int], Topics], unique_group: str,
        rig: Rig) -> None:
    t = topics(3)
    txn_timeout_s = 10.0  # lowered for the test; the broker aborts it after this
    worker = rig.worker(kafka_bootstrap, t, unique_group, env={
        "RDKAFKA_PRODUCER_TRANSACTION_TIMEOUT_MS": str(int(txn_timeout_s * 1000)),
        "CLASSIFIER_BATCH_SIZE": "50"}).wait_ready(90)
    collector = Collector(kafka_bootstrap, t).start()
    rig.later(collector.stop)
    # Input arrives every 0.1 s until the test stops it, so that a transaction is open at
    # nearly any moment and each thaw has input left to show progress on (a feed that ran
    # out during a freeze left a later thaw nothing to do: a "hang" that was the test's).
    freeze_s = txn_timeout_s + 15.0  # the timeout, the broker's abort sweep (10 s), the session
    feed = Feed(kafka_bootstrap, t.input, samples(40000, seed=1303), chunk=10, pause=0.1,
                max_seconds=3 * (freeze_s + 120.0)).start()
    rig.later(feed.stop)
    wait_for(lambda: progress(worker) > 300, 60, "progress before the freeze")
    assert worker.proc is not None
    freezes = 0
    for _ in range(3):  # a freeze between two transactions fences nothing: try again
        assert feed.running(), "the feed ended before a freeze landed inside a transaction"
        os.kill(worker.proc.pid, signal.SIGSTOP)
        time.sleep(freeze_s)
        os.kill(worker.proc.pid, signal.SIGCONT)
        freezes += 1
        before = progress(worker)
        rig.wait(lambda b=before: progress(worker) > b or not worker.alive(), 120,  # type: ignore[misc]
                 "progress after the freeze", worker)
        assert worker.alive(), worker.logs()
        if "fresh producer" in worker.log_path.read_text(errors="replace"):
            break
    f, outputs, dead, produced = _finish(rig, feed, collector)
    log = _no_traceback(worker)
    renewed = log.count("fresh producer")
    report("freeze-past-txn-timeout-eos", f, freezes=freezes, fresh_producers=renewed,
           exit_3=False)
    assert renewed >= 1, "no freeze landed inside a transaction"
    assert "another process took over" not in log
    _judge(rig, f, outputs, dead, produced)
    assert worker.terminate()[0] == 0, worker.logs()


def test_partitions_whose_committed_offsets_cannot_be_read_make_the_worker_unready(
        kafka_bootstrap: str, topics: Callable[[int], Topics], unique_group: str,
        rig: Rig) -> None:
    """A transaction that carries offsets for the worker's group and stays open (a crashed
    member's, until the broker times it out) makes the group's committed offsets unreadable
    (require_stable): the worker holds its partitions but cannot fetch them. It must say so
    (unready, one log line with the fetch states) and carry on once the transaction ends."""
    from confluent_kafka import Consumer as KafkaConsumer
    from confluent_kafka import Producer as KafkaProducer
    from confluent_kafka import TopicPartition

    t = topics(3)
    produced = produce_samples(kafka_bootstrap, t.input, samples(300, seed=1311))
    holder = KafkaProducer({"bootstrap.servers": kafka_bootstrap, "log_level": 0,
                            "transactional.id": f"holder-{uuid.uuid4().hex}",
                            "transaction.timeout.ms": 120000})
    member = KafkaConsumer({"bootstrap.servers": kafka_bootstrap, "group.id": unique_group})
    holder.init_transactions(30)
    holder.begin_transaction()
    holder.send_offsets_to_transaction([TopicPartition(t.input, p, 0) for p in range(3)],
                                       member.consumer_group_metadata(), 30)
    member.close()
    try:
        worker = rig.worker(kafka_bootstrap, t, unique_group).wait_ready(90)
        ready_at = time.monotonic()
        poller = ReadyPoller(worker).start()
        rig.later(poller.stop)
        rig.wait(lambda: not worker.ready() or not worker.alive(), 60,
                 "unready while the committed offsets are unreadable", worker)
        assert worker.alive(), worker.logs()
        assert progress(worker) == 0
        status = worker.status()
        assert status["stuck"] is True and status["inputWaitingSeconds"] > 20, status
        log = worker.log_path.read_text(errors="replace")
        assert log.count("input is waiting but nothing was consumed") == 1, log[-3000:]
    finally:
        holder.abort_transaction(30)
    collector = Collector(kafka_bootstrap, t).start()
    rig.later(collector.stop)
    f, outputs, dead, _ = _collect(collector, produced)
    rig.wait(lambda: worker.ready() or not worker.alive(), 60, "ready again", worker)
    unready_at = poller.first(False, after=ready_at)
    assert unready_at is not None
    report("offsets-unreadable", f, unready_after_s=unready_at - ready_at)
    _judge(rig, f, outputs, dead, produced)
    _no_traceback(worker)
    assert worker.terminate()[0] == 0, worker.logs()
