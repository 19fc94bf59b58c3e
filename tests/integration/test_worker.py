"""The stream worker against a real broker: end to end, SIGTERM and restart, two workers in a
group, a broker that appears after the worker started."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import orjson

from tests.integration.support import (
    Topics,
    WorkerProcess,
    produce_samples,
    read_and_check,
    read_topic,
    samples,
    wait_for,
)
from worker.classify.taxonomy import FailureCategory
from worker.dev import devbroker


def test_end_to_end_every_shape_exactly_once_with_matching_metrics(
        kafka_bootstrap: str, topics: Callable[[int], Topics], unique_group: str,
        workers: list[WorkerProcess], tmp_path: Path) -> None:
    t = topics(3)
    produced = produce_samples(kafka_bootstrap, t.input, samples(1200, seed=11))
    counts = produced.counts()
    assert counts["classified"] > 3000 and counts["dead_letter"] > 10
    assert counts["skipped_success"] > 500
    worker = WorkerProcess(kafka_bootstrap, t, unique_group, log_dir=tmp_path).start()
    workers.append(worker)
    worker.wait_ready()

    outputs, dead = read_and_check(kafka_bootstrap, t, produced)

    # Provenance and keys on the wire.
    some = outputs[0]
    assert some.headers["x-classifier-version"] and some.headers["content-type"]
    device = some.value["device"]["intuneDeviceId"] or some.value["device"]["entraDeviceId"]
    assert some.key == (device or some.value["id"]).encode()
    letter = dead[0]
    assert letter.headers["x-error-class"].decode() == letter.value["errorClass"]

    # Metrics equal what was published, once the last window has committed.
    wait_for(lambda: worker.metric("enrollment_events_total", outcome="classified")
             == counts["classified"], 30, "classified counter to catch up")
    assert worker.metric("enrollment_events_total", outcome="dead_lettered") == len(dead)
    assert worker.metric("enrollment_events_total", outcome="skipped_success") == \
        counts["skipped_success"]
    assert worker.metric("enrollment_input_messages_total") == len(produced.expected)
    for category in FailureCategory:
        assert worker.metric_sum("enrollment_failures_total", failure_category=category.name) \
            == counts[f"category.{category.name}"], category
    assert worker.metric_sum("enrollment_dead_letters_total") == len(dead)
    assert worker.metric("enrollment_transactions_total", result="committed") > 0
    assert worker.metric("enrollment_worker_ready") == 1

    code, took = worker.terminate()
    assert code == 0 and took < 30, worker.logs()


def test_sigterm_mid_stream_then_restart_loses_and_duplicates_nothing(
        kafka_bootstrap: str, topics: Callable[[int], Topics], unique_group: str,
        workers: list[WorkerProcess], tmp_path: Path) -> None:
    t = topics(3)
    produced = produce_samples(kafka_bootstrap, t.input, samples(3000, seed=12))
    txn_id = f"it-{uuid.uuid4().hex}"
    first = WorkerProcess(kafka_bootstrap, t, unique_group, transactional_id=txn_id,
                          env={"CLASSIFIER_BATCH_SIZE": "50"}, log_dir=tmp_path).start()
    workers.append(first)
    first.wait_ready()
    wait_for(lambda: first.metric("enrollment_events_total", outcome="classified") > 0, 60,
             "some output before the stop")
    code, took = first.terminate()
    assert code == 0, first.logs()
    assert took < 30
    done_before = first.log_path.read_text()
    assert "worker stopped" in done_before

    second = WorkerProcess(kafka_bootstrap, t, unique_group, transactional_id=txn_id,
                           log_dir=tmp_path).start()
    workers.append(second)
    read_and_check(kafka_bootstrap, t, produced)
    assert second.terminate()[0] == 0


def test_two_workers_in_one_group_share_partitions_and_process_each_event_once(
        kafka_bootstrap: str, topics: Callable[[int], Topics], unique_group: str,
        workers: list[WorkerProcess], tmp_path: Path) -> None:
    t = topics(6)
    a = WorkerProcess(kafka_bootstrap, t, unique_group, log_dir=tmp_path).start()
    b = WorkerProcess(kafka_bootstrap, t, unique_group, log_dir=tmp_path).start()
    workers += [a, b]
    a.wait_ready()
    b.wait_ready()
    wait_for(lambda: a.status().get("assignedPartitions", 0) > 0
             and b.status().get("assignedPartitions", 0) > 0
             and a.status()["assignedPartitions"] + b.status()["assignedPartitions"] == 6,
             60, "both workers to own partitions")
    produced = produce_samples(kafka_bootstrap, t.input, samples(1500, seed=13))
    outputs, _ = read_and_check(kafka_bootstrap, t, produced)
    served = {int(r.headers["x-source-partition"]) for r in outputs}
    assert served == set(range(6))
    both = [w.metric("enrollment_input_messages_total") for w in (a, b)]
    assert all(n > 0 for n in both) and sum(both) == len(produced.expected)


def test_at_least_once_mode_delivers_everything(
        kafka_bootstrap: str, topics: Callable[[int], Topics], unique_group: str,
        workers: list[WorkerProcess], tmp_path: Path) -> None:
    t = topics(2)
    produced = produce_samples(kafka_bootstrap, t.input, samples(600, seed=14))
    worker = WorkerProcess(kafka_bootstrap, t, unique_group, guarantee="at-least-once",
                           log_dir=tmp_path).start()
    workers.append(worker)
    read_and_check(kafka_bootstrap, t, produced)  # no fault injected: no duplicates either
    assert worker.terminate()[0] == 0


def test_worker_started_before_the_broker_serves_probes_then_processes(
        workers: list[WorkerProcess], tmp_path: Path) -> None:
    broker = devbroker.LocalKafka(port=devbroker.free_ports(1)[0])
    try:
        t = Topics("raw-late", "out-late", "dlq-late")
        worker = WorkerProcess(broker.bootstrap, t, "late-group", log_dir=tmp_path).start()
        workers.append(worker)
        wait_for(lambda: worker.get("/healthz")[0] == 200, 30, "liveness without a broker")
        assert worker.get("/readyz")[0] == 503
        code, body = worker.get("/metrics")
        assert code == 200 and b"enrollment_worker_ready 0.0" in body
        assert worker.get("/anything-else")[0] == 404

        broker.start()
        broker.create_topics([t.input, t.output, t.dead], partitions=1)
        produced = produce_samples(broker.bootstrap, t.input, samples(100, seed=15))
        worker.wait_ready(timeout=90)
        read_and_check(broker.bootstrap, t, produced)
        assert worker.terminate()[0] == 0
    finally:
        broker.close()


def test_a_full_producer_queue_makes_the_worker_wait_not_drop(
        kafka_bootstrap: str, topics: Callable[[int], Topics], unique_group: str,
        workers: list[WorkerProcess], tmp_path: Path) -> None:
    t = topics(2)
    produced = produce_samples(kafka_bootstrap, t.input, samples(400, seed=16))
    # A queue of 5 messages overflows on nearly every batch (envelopes hold up to 20 events).
    worker = WorkerProcess(kafka_bootstrap, t, unique_group, log_dir=tmp_path, env={
        "RDKAFKA_PRODUCER_QUEUE_BUFFERING_MAX_MESSAGES": "5"}).start()
    workers.append(worker)
    read_and_check(kafka_bootstrap, t, produced)
    assert worker.metric("enrollment_backpressure_waits_total") > 0  # the path was taken
    assert worker.metric("enrollment_transactions_total", result="aborted") == 0
    assert worker.terminate()[0] == 0


def test_pseudonymisation_setting_hides_identities_in_outputs(
        kafka_bootstrap: str, topics: Callable[[int], Topics], unique_group: str,
        workers: list[WorkerProcess], tmp_path: Path) -> None:
    from confluent_kafka import Producer

    from worker.contracts.examples import GRAPH_EVENT

    t = topics(1)
    event = {**GRAPH_EVENT, "userPrincipalName": "ada@contoso.com",
             "failureReason": "ada@contoso.com has no license"}
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(t.input, orjson.dumps(event))
    producer.produce(t.input, b"not json, from ada@contoso.com")
    assert producer.flush(30) == 0
    key_file = tmp_path / "pseudonym.key"
    key_file.write_text("a-long-random-secret")
    worker = WorkerProcess(kafka_bootstrap, t, unique_group, log_dir=tmp_path,
                           env={"CLASSIFIER_PSEUDONYMIZE_KEY_FILE": str(key_file)}).start()
    workers.append(worker)
    (out,) = read_topic(kafka_bootstrap, t.output, expect=1)
    (dead,) = read_topic(kafka_bootstrap, t.dead, expect=1)
    text = orjson.dumps(out.value).decode() + orjson.dumps(dead.value).decode()
    for identity in ("ada@contoso.com", GRAPH_EVENT["userId"], GRAPH_EVENT["deviceId"],
                     GRAPH_EVENT["managedDeviceIdentifier"]):
        assert identity not in text
    assert out.value["user"]["userPrincipalName"].startswith("hmac:")
    assert out.key is not None and GRAPH_EVENT["managedDeviceIdentifier"].encode() != out.key
    assert out.value["detailReason"] == "userNotLicensed"
    assert "a-long-random-secret" not in worker.log_path.read_text()
    assert worker.terminate()[0] == 0
