"""Fault scenarios against a real broker: the worker SIGKILLed and restarted, the broker killed
and restarted on its data dir, workers killed and added in one group, an output topic that does
not exist, and the SIGKILL scenario in at-least-once mode.

Every scenario is bounded, reads outputs with ``isolation.level=read_committed``, judges them
against the independent oracle (``worker.dev.samples``) and prints one figure line::

    FAULT <scenario>: messages=... events=... received=... lost=... duplicated=... recover_max_s=...

``messages`` are input messages sent, ``events`` the outputs and dead letters the oracle expects
from them, ``received`` the records read back (duplicates included).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.integration.faults_rig import (
    Collector,
    Feed,
    Figures,
    ReadyPoller,
    Rig,
    committed_offsets,
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
    samples,
    source_of,
    wait_for,
)
from worker.dev import devbroker

pytestmark = pytest.mark.slow

SESSION_TIMEOUT_S = 10.0  # RDKAFKA_CONSUMER_SESSION_TIMEOUT_MS set by WorkerProcess


# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.close()


# ---------------------------------------------------------------------------------- 1 and 5
@dataclass
class Outcome:
    figures: Figures
    recover: list[float]
    outputs: list[Record]
    dead: list[Record]
    produced: Produced


def _sigkill_three_times(rig: Rig, bootstrap: str, t: Topics, group: str, *,
                         guarantee: str, seed: int) -> Outcome:
    rng = random.Random(seed)
    txn_id = f"it-{uuid.uuid4().hex}"  # the same id on every restart, as a restarted pod's

    def launch() -> WorkerProcess:
        return rig.worker(bootstrap, t, group, guarantee=guarantee, transactional_id=txn_id,
                          env={"CLASSIFIER_BATCH_SIZE": "100"})

    def progressing(w: WorkerProcess) -> Callable[[], bool]:
        return lambda: progress(w) > 0 or not w.alive()

    worker = launch().wait_ready(90)
    collector = Collector(bootstrap, t).start()
    rig.later(collector.stop)
    feed = Feed(bootstrap, t.input, samples(9000, seed=seed), chunk=40, pause=0.25).start()
    rig.later(feed.stop)
    recover: list[float] = []
    for kill in range(1, 4):
        wait_for(progressing(worker), 90, f"progress before kill {kill}")
        time.sleep(rng.uniform(0.2, 3.0))  # a random point in the stream
        assert worker.alive(), rig.logs()
        worker.kill()  # SIGKILL
        killed_at = time.monotonic()
        worker = launch()  # same transactional id: fences the dead one's open transaction
        wait_for(progressing(worker), 120, f"progress after restart {kill}")
        assert worker.alive(), rig.logs()
        recover.append(time.monotonic() - killed_at)
    time.sleep(1.0)  # the last worker also serves live traffic, not only the backlog
    produced = feed.finish()
    collector.wait_complete(produced, timeout=120)
    collector.stop()
    assert collector.error is None, repr(collector.error)
    outputs, dead = collector.records()
    assert worker.alive(), rig.logs()
    assert worker.terminate()[0] == 0, worker.logs()
    return Outcome(figures(outputs, dead, produced), recover, outputs, dead, produced)


def test_sigkill_three_times_while_producing_exactly_once(
        kafka_bootstrap: str, topics: Callable[[int], Topics], unique_group: str,
        rig: Rig) -> None:
    o = _sigkill_three_times(rig, kafka_bootstrap, topics(3), unique_group,
                             guarantee="exactly-once", seed=1101)
    f = o.figures
    report("sigkill-eos", f, kills=3, recover_max_s=max(o.recover),
           recover_s="/".join(f"{r:.1f}" for r in o.recover))
    assert f.lost == 0 and f.duplicated == 0 and f.unexpected == 0, (f, rig.logs())
    check_against_oracle(o.outputs, o.dead, o.produced)


def test_sigkill_three_times_while_producing_at_least_once(
        kafka_bootstrap: str, topics: Callable[[int], Topics], unique_group: str,
        rig: Rig) -> None:
    o = _sigkill_three_times(rig, kafka_bootstrap, topics(3), unique_group,
                             guarantee="at-least-once", seed=1105)
    f = o.figures
    report("sigkill-alo", f, kills=3, recover_max_s=max(o.recover),
           recover_s="/".join(f"{r:.1f}" for r in o.recover),
           duplicate_ratio=f"{f.duplicated / max(f.events, 1):.4f}")
    assert f.lost == 0 and f.unexpected == 0, (f, rig.logs())
    # Duplicates are allowed (and counted above); every copy is still a correct classification.
    check_against_oracle(list({source_of(r): r for r in o.outputs}.values()),
                         list({source_of(r): r for r in o.dead}.values()), o.produced)
    for r in o.outputs:
        p, off, idx = source_of(r)
        assert r.value["failureCategory"] == o.produced.expected[(p, off)][idx].category


# ---------------------------------------------------------------------------------- 2
def test_broker_killed_mid_stream_and_restarted_on_its_data_dir(rig: Rig) -> None:
    broker = devbroker.LocalKafka()  # private: this test kills it
    rig.later(broker.close)
    broker.start()
    t = Topics("raw-bk", "out-bk", "dlq-bk")
    broker.create_topics([t.input, t.output], partitions=3)
    broker.create_topics([t.dead], partitions=1)
    worker = rig.worker(broker.bootstrap, t, "bk-group").wait_ready(90)
    poller = ReadyPoller(worker).start()
    rig.later(poller.stop)
    collector = Collector(broker.bootstrap, t).start()
    rig.later(collector.stop)
    feed = Feed(broker.bootstrap, t.input, samples(6000, seed=1102), chunk=40,
                pause=0.25).start()
    rig.later(feed.stop)

    wait_for(lambda: progress(worker) > 200, 60, "progress before the broker dies")
    before = progress(worker)
    # The clock starts before the kill: kill() waits for the JVM to exit, and the worker can
    # report unready before that wait returns; a transition before killed_at is never found.
    killed_at = time.monotonic()
    broker.kill()  # SIGKILL
    rig.wait(lambda: poller.first(False, killed_at) is not None, 30, "/readyz to go false",
             worker)
    # A little longer than the session timeout, so the group session expires during the
    # outage and the lost-partitions path runs too (it once crashed librdkafka: a seek on a
    # partition being unassigned).
    time.sleep(max(0.0, killed_at + SESSION_TIMEOUT_S + 3.0 - time.monotonic()))
    assert worker.alive(), worker.logs()
    restart_at = time.monotonic()
    broker.start()  # same data dir, same ports
    up_at = time.monotonic()
    rig.wait(lambda: (progress(worker) > before and worker.ready()) or not worker.alive(), 120,
             "the worker to be ready and make progress after the broker came back", worker)
    assert worker.alive(), worker.logs()
    resumed_at = time.monotonic()
    time.sleep(2.0)  # live traffic after the outage too
    produced = feed.finish()
    collector.wait_complete(produced, timeout=120)
    collector.stop()
    poller.stop()
    assert collector.error is None, repr(collector.error)
    outputs, dead = collector.records()
    f = figures(outputs, dead, produced)
    not_ready = poller.first(False, killed_at)
    assert not_ready is not None
    ready_again, ready = poller.settled()
    assert ready and ready_again > not_ready, poller.transitions
    report("broker-kill-eos", f, down_s=restart_at - killed_at,
           broker_restart_s=up_at - restart_at,
           readyz_false_after_kill_s=not_ready - killed_at,
           readyz_true_after_kill_s=ready_again - killed_at,
           readyz_flips=len(poller.transitions) - 1,
           recover_max_s=resumed_at - up_at)
    assert f.lost == 0 and f.duplicated == 0 and f.unexpected == 0, (f, worker.logs())
    check_against_oracle(outputs, dead, produced)
    assert worker.metric("enrollment_worker_ready") == 1
    print("FAULT broker-kill-eos: lost-partitions path ran:",
          "partitions lost" in worker.log_path.read_text())
    assert worker.terminate()[0] == 0, worker.logs()


# ---------------------------------------------------------------------------------- 3
def test_scale_out_and_in_one_worker_killed_one_added(
        kafka_bootstrap: str, topics: Callable[[int], Topics], unique_group: str,
        rig: Rig) -> None:
    t = topics(6)
    # A killed worker that is not restarted leaves its open transaction to time out on the
    # broker; until then its partitions' offsets are unstable and read_committed readers wait.
    # 10 s like the session timeout bounds that, instead of librdkafka's default 60 s.
    env = {"RDKAFKA_PRODUCER_TRANSACTION_TIMEOUT_MS": "10000", "CLASSIFIER_BATCH_SIZE": "100"}

    def assigned(*ws: WorkerProcess) -> list[int]:
        return [w.status().get("assignedPartitions", 0) for w in ws]

    a, b, c = (rig.worker(kafka_bootstrap, t, unique_group, env=env) for _ in range(3))
    for w in (a, b, c):
        w.wait_ready(90)
    wait_for(lambda: sum(assigned(a, b, c)) == 6 and min(assigned(a, b, c)) > 0, 90,
             "three workers to share six partitions")
    collector = Collector(kafka_bootstrap, t).start()
    rig.later(collector.stop)
    feed = Feed(kafka_bootstrap, t.input, samples(9000, seed=1103), chunk=60,
                pause=0.25).start()
    rig.later(feed.stop)
    wait_for(lambda: all(progress(w) > 0 for w in (a, b, c)), 60, "all three make progress")

    probe = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "probe"})
    try:  # inputs from here on were produced after the kill below
        high = {p: probe.get_watermark_offsets(TopicPartition(t.input, p), timeout=10)[1]
                for p in range(6)}
    finally:
        probe.close()
    b.kill()  # SIGKILL, not restarted: scale-in by crash
    killed_at = time.monotonic()
    time.sleep(2.0)
    d = rig.worker(kafka_bootstrap, t, unique_group, env=env)  # scale-out: a new replica
    d.wait_ready(90)
    wait_for(lambda: sum(assigned(a, c, d)) == 6 and assigned(d)[0] > 0, 90,
             "three live workers to own all six partitions")
    rebalanced_at = time.monotonic()

    def served_again() -> dict[int, float]:
        """Per input partition: when its first output of a post-kill input arrived."""
        outputs, dead = collector.snapshot()
        first: dict[int, float] = {}
        for arrival in outputs + dead:
            p, off, _ = source_of(arrival.record)
            if off >= high[p]:
                first[p] = min(first.get(p, arrival.at), arrival.at)
        return first

    wait_for(lambda: len(served_again()) == 6, 120, "outputs from every input partition")
    wait_for(lambda: progress(d) > 0, 60, "the added worker to commit")
    time.sleep(1.0)
    produced = feed.finish()
    collector.wait_complete(produced, timeout=120)
    collector.stop()
    assert collector.error is None, repr(collector.error)
    outputs, dead = collector.records()
    f = figures(outputs, dead, produced)
    served = served_again()
    serve_max = max(served.values()) - killed_at
    report("scale-eos", f, workers="3-1+1", rebalanced_after_kill_s=rebalanced_at - killed_at,
           recover_max_s=serve_max,
           within_session_timeout="yes" if serve_max <= SESSION_TIMEOUT_S else "no")
    assert f.lost == 0 and f.duplicated == 0 and f.unexpected == 0, (f, rig.logs())
    check_against_oracle(outputs, dead, produced)
    assert set(served) == set(range(6))
    assert {int(r.headers["x-source-partition"]) for r in outputs} == set(range(6))
    # The dead member leaves after the session timeout; an open transaction of its own aborts
    # after the (equal) transaction timeout plus the broker's 10 s expiry sweep; the rest is
    # slack for a loaded 2-core machine.
    assert serve_max < 3 * SESSION_TIMEOUT_S + 10, served
    for w in (a, c, d):
        assert w.terminate()[0] == 0, w.logs()


# ---------------------------------------------------------------------------------- 4
@pytest.fixture
def no_auto_create(monkeypatch: pytest.MonkeyPatch) -> None:
    """Brokers started in the test refuse to auto-create topics. LocalKafka has no override
    for it, so the server.properties it renders is edited."""
    render = devbroker.render_server_properties

    def without_auto_create(*args: Any, **kwargs: Any) -> str:
        props = render(*args, **kwargs)
        assert "auto.create.topics.enable=true" in props
        return props.replace("auto.create.topics.enable=true", "auto.create.topics.enable=false")

    monkeypatch.setattr(devbroker, "render_server_properties", without_auto_create)


@pytest.mark.usefixtures("no_auto_create")
def test_missing_output_topic_commits_nothing_past_unwritten_outputs_then_recovers(
        rig: Rig) -> None:
    broker = devbroker.LocalKafka()  # private, started with auto.create.topics.enable=false
    rig.later(broker.close)
    broker.start()
    props = (broker.data_dir / "server.properties").read_text()
    assert "auto.create.topics.enable=false" in props
    t = Topics("raw-nt", "out-not-yet", "dlq-nt")
    broker.create_topics([t.input], partitions=2)
    broker.create_topics([t.dead], partitions=1)
    group = "nt-group"
    # For test speed only: librdkafka gives a new topic 30 s to appear before failing its
    # messages, and looks again for topics it believes missing every 5 min; 3 s and 2 s here.
    worker = rig.worker(broker.bootstrap, t, group, env={
        "RDKAFKA_PRODUCER_TOPIC_METADATA_PROPAGATION_MAX_MS": "3000",
        "RDKAFKA_TOPIC_METADATA_REFRESH_INTERVAL_MS": "2000"}).wait_ready(90)
    produced = Feed(broker.bootstrap, t.input, samples(400, seed=1104), chunk=100,
                    pause=0.1).start().finish(stop=False)

    def failing() -> bool:
        assert worker.alive(), worker.logs()
        return worker.metric_if_up("enrollment_transactions_total", result="aborted") >= 3
    wait_for(failing, 90, "the worker to abort windows it cannot write")
    time.sleep(3.0)  # keep failing a little longer: nothing may commit meanwhile
    assert worker.alive(), worker.logs()
    aborted = worker.metric("enrollment_transactions_total", result="aborted")
    abortable = worker.metric("enrollment_kafka_errors_total", kind="abortable")
    assert abortable >= aborted > 0
    log_text = worker.log_path.read_text(errors="replace")
    assert f"produce to {t.output}" in log_text and "Unknown topic" in log_text, log_text[-4000:]
    assert worker.metric("enrollment_events_total", outcome="classified") == 0

    # Nothing committed past an input whose output was not written: at most up to the first
    # message of each partition that has to produce a classified event.
    committed = committed_offsets(broker.bootstrap, group, t.input, 2)
    needs_output = {p: min(off for (pp, off), recs in produced.expected.items()
                           if pp == p and any(r.outcome == "classified" for r in recs))
                    for p in range(2)}
    for p, off in committed.items():
        assert off < 0 or off <= needs_output[p], (p, off, needs_output[p])

    broker.create_topics([t.output], partitions=2)
    created_at = time.monotonic()
    collector = Collector(broker.bootstrap, t).start()
    rig.later(collector.stop)
    wait_for(lambda: bool(collector.snapshot()[0]) or not worker.alive(), 90,
             "the first output once the topic exists")
    assert worker.alive(), worker.logs()
    recovered = time.monotonic() - created_at
    collector.wait_complete(produced, timeout=120)
    collector.stop()
    assert collector.error is None, repr(collector.error)
    outputs, dead = collector.records()
    f = figures(outputs, dead, produced)
    report("missing-output-topic-eos", f, aborted_windows=int(aborted),
           kafka_errors_abortable=int(abortable),
           committed_while_missing=",".join(f"p{p}:{o}" for p, o in sorted(committed.items())),
           recover_max_s=recovered)
    assert f.lost == 0 and f.duplicated == 0 and f.unexpected == 0, (f, worker.logs())
    check_against_oracle(outputs, dead, produced)
    assert worker.terminate()[0] == 0, worker.logs()
