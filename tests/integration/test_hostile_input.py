"""Hostile and broken input through a real broker into one real worker (exactly-once).

The corpus: invalid JSON, invalid UTF-8, empty values and tombstones, JSON that is not an
object, nesting 100,000 levels deep, a value just under the broker's ``message.max.bytes``,
reasons of 1.9, 3 and 6 MB, numbers out of range, duplicate keys, wrong field types, bad rows
inside envelopes and pages, envelopes of 100,000 to 1,000,000 tiny rows (over the per-message
record limit) and one of 5,000 rows (at it); then a flood of 100,000 distinct ``os`` and ``enrollmentType``
strings (1,000 records per message).

Sizes: the input topic is created with ``max.message.bytes`` = 8 MiB so the multi-MB messages
reach the worker at all (the broker default is about 1 MB), and the test's producer raises its
own ``message.max.bytes`` to match. The worker runs with its defaults: librdkafka grows its
fetch size by itself for a message above ``max.partition.fetch.bytes``, the core dead-letters
anything above ``--max-message-bytes`` (2 MiB) as ``too_large`` and keeps at most
``--max-dead-letter-payload`` (512 KiB) of the original bytes.

Asserted, and printed as ``HOSTILE ...`` figure lines:

* every input record ends exactly once, classified or dead-lettered (outputs and dead letters
  are matched to the input by ``x-source-partition``/``x-source-offset`` and
  ``source.recordIndex``), with the expected outcome where the contract defines one;
* the worker process never restarts: the same PID is alive throughout and exits 0 on SIGTERM;
* resident memory stays bounded: VmRSS is polled from /proc during the run and the peak
  (VmHWM) must stay below ``PEAK_RSS_BOUND_MB``;
* metric label cardinality stays bounded: the flood adds at most ``MAX_NEW_FAILURE_SERIES``
  ``enrollment_failures_total`` series (unknown values are counted as ``other``), and none of the
  flood's strings appears in /metrics.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from tests.integration.support import Topics, WorkerProcess, wait_for
from worker.stream.metrics import ENROLLMENT_TYPE_LABELS, OS_LABELS

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
INPUT_TOPIC_MAX_BYTES = 8 * MiB  # topic-level max.message.bytes of the input topic
WORKER_MAX_MESSAGE_BYTES = 2 * MiB  # the worker's default --max-message-bytes
DEAD_LETTER_KEEP = 512 * 1024  # the worker's default --max-dead-letter-payload
# VmHWM of the worker over the whole run. The design allows ~50 MB of interpreter and libraries,
# librdkafka's 64 MiB producer queue and 16 MiB consumer prefetch (worker/stream/clients.py), one batch
# in Python and allocator slack; measured 188-205 MB here, almost all of it during the flood.
PEAK_RSS_BOUND_MB = 250
FLOOD_RECORDS, FLOOD_PER_MESSAGE = 100_000, 1000
MAX_NEW_FAILURE_SERIES = 4  # the flood uses 2 categories: (category, other, other) each
DEEP = 100_000

Expect = str  # "classified", an error class, or "dead" (any error class)


@dataclass
class Item:
    name: str
    value: bytes | None
    expect: tuple[Expect, ...]  # one per record in the message
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


# ------------------------------------------------------------------ the corpus
def _reason(size: int, category: str = "badRequest") -> bytes:
    """A flat failure whose message is ``size`` bytes, nearly all of it the reason text."""
    head = b'{"failureCategory":"' + category.encode() + b'","failureReason":"'
    filler = b"Enrollment request rejected by the service; " * (size // 44 + 1)
    return head + filler[:size - len(head) - 2] + b'"}'


def _corpus(broker_limit: int) -> list[Item]:
    graph = {"@odata.type": "#microsoft.graph.enrollmentTroubleshootingEvent",
             "id": str(uuid.uuid4()), "failureCategory": "authentication",
             "failureReason": "0x80180002", "eventDateTime": "2026-01-01T00:00:00Z"}
    row = {"time": "2026-01-01T00:00:00Z", "category": "OperationalLogs",
           "operationName": "Enrollment", "resultType": "Fail",
           "properties": {"FailureCategory": "UserValidation", "FailureReason": "UserNotLicensed",
                          "MessageId": str(uuid.uuid4())}}
    near_limit = broker_limit - 1024  # room for the record batch's framing and headers
    invalid_utf8_blob = bytes(range(128, 256)) * (1_500_000 // 128)
    items = [
        # invalid JSON
        Item("truncated object", b'{"failureCategory": "userValidation"', ("not_json",)),
        Item("single quotes", b"{'failureCategory': 'userValidation'}", ("not_json",)),
        Item("html error page", b"<html><body>502 Bad Gateway</body></html>", ("not_json",)),
        Item("trailing garbage", b'{"failureCategory": "authentication"} }}', ("not_json",)),
        Item("NaN literal", b'{"failureCategory": NaN}', ("not_json",)),
        Item("whitespace only", b" \r\n\t ", ("not_json",)),
        Item("NUL bytes", b"\x00" * 64, ("not_json",)),
        Item("lone surrogate escape", b'{"failureReason": "\\ud800"}', ("dead",)),
        # invalid UTF-8
        Item("0xff inside a string", b'{"failureCategory": "user\xffValidation"}', ("not_utf8",)),
        Item("UTF-16 bytes", '{"failureCategory": "x"}'.encode("utf-16"), ("not_utf8",)),
        Item("overlong encoding", b'{"failureReason": "\xc0\xaf"}', ("not_utf8",)),
        Item("encoded surrogate", b'{"failureReason": "\xed\xa0\x80"}', ("not_utf8",)),
        Item("cut multibyte char", b'{"failureReason": "caf\xc3"}', ("not_utf8",)),
        Item("1.5 MB of binary", invalid_utf8_blob, ("not_utf8",)),
        # empty and null
        Item("empty value", b"", ("empty",), key=b"device-1"),
        Item("tombstone", None, ("empty",), key=b"device-2"),
        # not an object
        *(Item(f"top-level {v.decode()}", v, ("not_object",))
          for v in (b"[1,2]", b'"text"', b"42", b"null", b"true", b"[]")),
        # nesting 100,000 levels deep
        Item("100k nested objects", b'{"a":' * DEEP + b"1" + b"}" * DEEP, ("too_deep",)),
        Item("100k nested arrays", b"[" * DEEP + b"]" * DEEP, ("too_deep",)),
        Item("100k nested inside an envelope",
             b'{"records":[' + orjson.dumps(row) + b"," + b"[" * DEEP + b"]" * DEEP + b"]}",
             ("too_deep",)),
        Item("100k nested properties string",
             orjson.dumps({"properties": "[" * DEEP + "]" * DEEP}), ("bad_nested_json",)),
        # sizes: near the broker's limit, and several MB (beyond the default broker limit)
        Item("near the broker limit, valid", _reason(near_limit), ("classified",)),
        Item("near the broker limit, invalid", b"{" + b"a" * (near_limit - 1), ("not_json",)),
        Item("1.9 MB reason", _reason(1_900_000), ("classified",)),
        Item("3 MB reason", _reason(3 * 1_000_000), ("too_large",)),
        Item("6 MB reason", _reason(6 * 1_000_000), ("too_large",)),
        # many rows in one small message: bounded by --max-records-per-message (5,000), the
        # whole message is dead-lettered once with its original bytes (issue 13)
        *(Item(name, b'{"records":[' + b",".join([r] * n) + b"]}", ("too_many_records",))
          for name, r, n in (("200 KB of 0 rows", b"0", 100_000),
                             ("300 KB of {} rows", b"{}", 100_000),
                             ("2 MiB of {} rows", b"{}", WORKER_MAX_MESSAGE_BYTES // 3 - 10),
                             ("2 MiB of 0 rows", b"0", WORKER_MAX_MESSAGE_BYTES // 2 - 10))),
        Item("5,000 rows, the limit", orjson.dumps({"records": [
            {"failureCategory": "userValidation", "failureReason": f"r{i} " + "x" * 250}
            for i in range(5000)]}), ("classified",) * 5000),
        # numbers out of range
        Item("category 10^29", b'{"failureCategory": 99999999999999999999999999999}',
             ("classified",)),
        Item("category -2^63-1", b'{"failureCategory": -9223372036854775809}', ("classified",)),
        Item("category 2^64", b'{"failureCategory": 18446744073709551616, "failureReason": "x"}',
             ("classified",)),
        Item("category 1e400", b'{"failureCategory": 1e400}', ("dead",)),
        Item("category -1", b'{"failureCategory": -1, "failureReason": "x"}', ("classified",)),
        Item("category 12", b'{"failureCategory": 12}', ("classified",)),
        Item("category 4.5", b'{"failureCategory": 4.5}', ("classified",)),
        Item("HRESULT beyond 64 bits", b'{"failureReason": "0xFFFFFFFFFFFFFFFFFFFFFFFF"}',
             ("classified",)),
        Item("graph fields as huge numbers",
             orjson.dumps({**graph, "eventDateTime": 1e308, "osVersion": -(2**63),
                           "operatingSystem": 2**64 - 1}), ("classified",)),
        # duplicate keys
        Item("duplicate category",
             b'{"failureCategory":"authentication","failureCategory":"userValidation",'
             b'"failureReason":"a","failureReason":"UserNotLicensed"}', ("classified",)),
        Item("duplicate records key",
             b'{"records":[{"failureCategory":"authentication"}],"records":"x"}', ("any",)),
        # wrong field types
        Item("category object", b'{"failureCategory": {"value": "userValidation"}}',
             ("wrong_type",)),
        Item("category list", b'{"failureCategory": ["userValidation"], "failureReason": "x"}',
             ("wrong_type",)),
        Item("category boolean", b'{"failureCategory": true}', ("wrong_type",)),
        Item("reason object", b'{"failureCategory": "authentication", "failureReason": {}}',
             ("wrong_type",)),
        Item("properties number", b'{"properties": 5}', ("wrong_type",)),
        Item("properties broken JSON", b'{"properties": "{\\"FailureCategory\\": "}',
             ("bad_nested_json",)),
        Item("graph fields of the wrong types",
             orjson.dumps({**graph, "operatingSystem": {"name": "Windows"},
                           "enrollmentType": ["userEnrollment"], "id": 7,
                           "managedDeviceIdentifier": [1]}), ("classified",)),
        Item("envelope with bad rows",
             orjson.dumps({"records": [1, "x", None, [], {"properties": 5},
                                       {"properties": "{bad"}, row]}),
             ("not_object", "not_object", "not_object", "not_object", "wrong_type",
              "bad_nested_json", "classified")),
        Item("page with a bad event", orjson.dumps({"value": [1, graph]}),
             ("not_object", "classified")),
        Item("headers kept on a dead letter", b"{oops", ("not_json",), key=b"device-3",
             headers=[("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
                      ("x-binary", bytes(range(256)))]),
    ]
    return items


def _flood() -> Iterator[Item]:
    """FLOOD_RECORDS records, each with its own os and enrollmentType string; graph pages
    and Event Hubs envelopes alternate."""
    salt = uuid.uuid4().hex[:8]
    for m in range(FLOOD_RECORDS // FLOOD_PER_MESSAGE):
        first = m * FLOOD_PER_MESSAGE
        if m % 2:
            records: list[dict[str, Any]] = [{
                "time": "2026-01-01T00:00:00Z", "category": "OperationalLogs",
                "operationName": "Enrollment", "resultType": "Fail",
                "properties": {"FailureCategory": "UserValidation",
                               "FailureReason": "UserNotLicensed",
                               "MessageId": f"flood-{salt}-{i}", "Os": f"FloodOS-{salt}-{i}",
                               "EnrollmentType": f"FloodET-{salt}-{i}"}}
                for i in range(first, first + FLOOD_PER_MESSAGE)]
            value = orjson.dumps({"records": records})
        else:
            records = [{"@odata.type": "#microsoft.graph.enrollmentTroubleshootingEvent",
                        "id": f"flood-{salt}-{i}", "failureCategory": "authentication",
                        "failureReason": "Enrollment failed.",
                        "operatingSystem": f"FloodOS-{salt}-{i}",
                        "enrollmentType": f"FloodET-{salt}-{i}"}
                       for i in range(first, first + FLOOD_PER_MESSAGE)]
            value = orjson.dumps({"value": records})
        yield Item(f"flood {m}", value, ("classified",) * FLOOD_PER_MESSAGE)


# ------------------------------------------------------------------ broker helpers
def _broker_message_max_bytes(admin: AdminClient) -> int:
    broker_id = next(iter(admin.list_topics(timeout=30).brokers))
    resource = ConfigResource(ResourceType.BROKER, str(broker_id))
    configs = next(iter(admin.describe_configs([resource]).values())).result(30)
    return int(configs["message.max.bytes"].value)


def _create(admin: AdminClient, topics: dict[str, tuple[int, dict[str, str]]]) -> None:
    futures = admin.create_topics([NewTopic(n, num_partitions=p, replication_factor=1,
                                            config=c) for n, (p, c) in topics.items()],
                                  operation_timeout=30)
    for fut in futures.values():
        fut.result(45)

    def ready() -> bool:
        meta = admin.list_topics(timeout=10).topics
        return all(n in meta and meta[n].error is None and meta[n].partitions
                   and all(p.leader >= 0 for p in meta[n].partitions.values()) for n in topics)
    wait_for(ready, 45, "hostile topics to have leaders")


@pytest.fixture
def hostile_topics(kafka_bootstrap: str) -> Iterator[tuple[Topics, int]]:
    """(topics, the broker's message.max.bytes); the input topic takes 8 MiB messages."""
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    u = uuid.uuid4().hex[:10]
    t = Topics(f"hostile-raw-{u}", f"hostile-out-{u}", f"hostile-dlq-{u}")
    limit = _broker_message_max_bytes(admin)
    _create(admin, {t.input: (2, {"max.message.bytes": str(INPUT_TOPIC_MAX_BYTES)}),
                    t.output: (2, {}), t.dead: (1, {})})
    yield t, limit
    futures = admin.delete_topics([t.input, t.output, t.dead], operation_timeout=10)
    for fut in futures.values():
        with contextlib.suppress(Exception):
            fut.result(15)


@dataclass
class Sent:
    items: dict[tuple[int, int], Item] = field(default_factory=dict)  # (partition, offset)

    def records(self) -> int:
        return sum(len(i.expect) for i in self.items.values())


def _produce(bootstrap: str, topic: str, items: list[Item] | Iterator[Item], sent: Sent) -> int:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                         "compression.type": "none",  # sizes on the wire are the real sizes
                         "message.max.bytes": INPUT_TOPIC_MAX_BYTES + 4096,
                         "enable.idempotence": True})
    failures: list[str] = []
    count = 0
    for item in items:
        def report(err: Any, msg: Any, item: Item = item) -> None:
            if err is not None:
                failures.append(f"{item.name}: {err}")
            else:
                sent.items[(msg.partition(), msg.offset())] = item
        for _ in range(600):  # bounded: a full local queue drains within seconds
            try:
                producer.produce(topic, item.value, item.key, headers=item.headers or None,
                                 on_delivery=report)
                break
            except BufferError:
                producer.poll(0.1)
        else:
            raise AssertionError(f"producer queue stayed full ({item.name})")
        producer.poll(0)
        count += 1
    assert producer.flush(60) == 0, "input not delivered"
    assert not failures, failures
    return count


@dataclass
class Seen:
    """Outputs and dead letters by input (partition, offset, record index)."""

    outcome: dict[tuple[int, int, int], list[str]] = field(default_factory=dict)
    dead: dict[tuple[int, int, int], tuple[dict[str, Any], dict[str, bytes], bytes | None]] = \
        field(default_factory=dict)
    total: int = 0


def _read(bootstrap: str, topic: str, seen: Seen, *, expect: int, dead: bool,
          timeout: float = 180.0, settle: float = 3.0) -> None:
    """Read committed records until ``expect`` of this topic arrived, then ``settle`` seconds
    more (duplicates would show); keeps only what the assertions need."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "isolation.level": "read_committed"})
    consumer.subscribe([topic])
    got, deadline, settle_until = 0, time.monotonic() + timeout, None
    try:
        while True:
            now = time.monotonic()
            if settle_until is None and got >= expect:
                settle_until = now + settle
            if settle_until is not None and now > settle_until:
                return
            assert now < deadline, f"{topic}: {got} of {expect} records after {timeout:.0f}s"
            for m in consumer.consume(1000, 0.5):
                if m.error() is not None:
                    continue
                headers = dict(m.headers() or [])
                doc = orjson.loads(m.value() or b"null")
                key = (int(headers["x-source-partition"]), int(headers["x-source-offset"]),
                       doc["source"]["recordIndex"] or 0)
                kind = doc["errorClass"] if dead else "classified"
                seen.outcome.setdefault(key, []).append(kind)
                if dead:
                    seen.dead[key] = (doc, headers, m.key())
                got += 1
                seen.total += 1
    finally:
        consumer.close()


def _read_all(bootstrap: str, t: Topics, sent: Sent) -> Seen:
    expect_dead = sum(1 for i in sent.items.values() for e in i.expect
                      if e not in ("classified", "any"))
    seen = Seen()
    _read(bootstrap, t.dead, seen, expect=expect_dead, dead=True)
    _read(bootstrap, t.output, seen, expect=sent.records() - seen.total, dead=False)
    return seen


class MemoryWatch:
    """Polls the worker's /proc/<pid>/status on a thread: VmRSS samples, liveness, PID."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid, self.interval = pid, interval
        self.max_rss_kb, self.samples, self.died_at = 0, 0, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)
        self._thread.start()

    def status(self) -> dict[str, int]:
        out = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                out[name] = int(rest.split()[0])
        return out

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                rss = self.status()["VmRSS"]
            except (OSError, KeyError):
                self.died_at = time.monotonic()
                return
            self.max_rss_kb = max(self.max_rss_kb, rss)
            self.samples += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@dataclass(frozen=True)
class Series:
    failures: frozenset[tuple[tuple[str, str], ...]]  # label sets of enrollment_failures_total
    total: int  # every sample line in /metrics


def _series(worker: WorkerProcess) -> Series:
    metrics = worker.metrics()
    return Series(frozenset(labels for (name, labels) in metrics
                            if name == "enrollment_failures_total"), len(metrics))


def _check_metrics(worker: WorkerProcess, sent: Sent, tally: Counter[str], baseline: Series,
                   after_corpus: Series) -> Series:
    """Counters equal what was published; the flood added only a handful of series."""
    metrics = worker.metrics()
    dead = sum(n for k, n in tally.items() if k != "classified")
    assert metrics[("enrollment_input_messages_total", ())] == len(sent.items)
    assert metrics[("enrollment_events_total", (("outcome", "classified"),))] == \
        tally["classified"]
    assert metrics[("enrollment_events_total", (("outcome", "dead_lettered"),))] == dead
    final = _series(worker)
    new_by_flood = final.failures - after_corpus.failures
    assert len(new_by_flood) <= MAX_NEW_FAILURE_SERIES, sorted(new_by_flood)
    for labels in new_by_flood:
        assert dict(labels)["os"] == "other" == dict(labels)["enrollment_type"], labels
    for labels in final.failures:
        d = dict(labels)
        assert d["os"] in OS_LABELS and d["enrollment_type"] in ENROLLMENT_TYPE_LABELS, d
    # Every family together: a _total and a _created line per new failure series, at most.
    assert final.total - after_corpus.total <= 2 * MAX_NEW_FAILURE_SERIES, \
        (after_corpus.total, final.total)
    body = worker.get("/metrics")[1]
    assert b"FloodOS-" not in body and b"FloodET-" not in body
    return final


def _check_outcomes(sent: Sent, seen: Seen) -> Counter[str]:
    """Every record of every input message exactly once, with the expected outcome."""
    dupes = [k for k, v in seen.outcome.items() if len(v) > 1]
    assert not dupes, f"duplicated outputs/dead letters: {dupes[:5]}"
    expected_keys = {(p, o, i) for (p, o), item in sent.items.items()
                     for i in range(len(item.expect))}
    missing = expected_keys - seen.outcome.keys()
    assert not missing, [(sent.items[k[:2]].name, k) for k in sorted(missing)[:10]]
    extra = seen.outcome.keys() - expected_keys
    assert not extra, f"outputs for records nobody sent: {sorted(extra)[:5]}"
    tally: Counter[str] = Counter()
    for (p, o, i), kinds in seen.outcome.items():
        item, got = sent.items[(p, o)], kinds[0]
        want = item.expect[i]
        tally[got] += 1
        if want == "dead":
            assert got != "classified", (item.name, i, got)
        elif want != "any":
            assert got == want, (item.name, i, got, want)
        assert got != "internal_error", item.name
    return tally


def _check_dead_letters(sent: Sent, seen: Seen) -> None:
    for (p, o, _i), (doc, headers, key) in seen.dead.items():
        item = sent.items[(p, o)]
        assert headers["x-error-class"].decode() == doc["errorClass"]
        assert key == item.key, item.name
        for name, value in item.headers:
            assert headers.get(name) == value, (item.name, name)  # original headers kept
        if doc["payloadScope"] != "message":
            continue
        original = item.value or b""
        assert doc["payloadBytes"] == len(original), item.name
        assert doc["payloadSha256"] == hashlib.sha256(original).hexdigest(), item.name
        assert doc["payloadTruncated"] == (len(original) > DEAD_LETTER_KEEP), item.name
        if item.value is None:
            assert doc["payload"] is None and doc["payloadEncoding"] == "none"
            continue
        kept = (base64.b64decode(doc["payload"]) if doc["payloadEncoding"] == "base64"
                else doc["payload"].encode())
        assert kept == original[:DEAD_LETTER_KEEP], item.name  # at most 512 KiB, a true prefix


# ------------------------------------------------------------------ the test
def test_hostile_corpus_and_label_flood_leave_one_bounded_worker_running(
        kafka_bootstrap: str, hostile_topics: tuple[Topics, int], unique_group: str,
        tmp_path: Path) -> None:
    started = time.monotonic()
    t, broker_limit = hostile_topics
    assert broker_limit < 3 * 1_000_000, "the multi-MB messages must exceed the broker default"
    corpus = _corpus(broker_limit)
    worker = WorkerProcess(kafka_bootstrap, t, unique_group, log_dir=tmp_path).start()
    watch: MemoryWatch | None = None
    try:
        worker.wait_ready(timeout=90)
        assert worker.proc is not None
        pid = worker.proc.pid
        watch = MemoryWatch(pid)
        ready_rss_mb = watch.status()["VmRSS"] / 1024
        baseline = _series(worker)

        # Phase 1: the hostile corpus.
        sent = Sent()
        n_corpus = _produce(kafka_bootstrap, t.input, corpus, sent)
        wait_for(lambda: not worker.alive()
                 or worker.metric("enrollment_input_messages_total") >= n_corpus,
                 120, "the corpus to be committed")
        assert worker.alive(), worker.logs()
        after_corpus = _series(worker)
        corpus_hwm_mb = watch.status()["VmHWM"] / 1024

        # Phase 2: the label flood.
        flood_started = time.monotonic()
        n_flood = _produce(kafka_bootstrap, t.input, _flood(), sent)
        wait_for(lambda: not worker.alive()
                 or worker.metric("enrollment_input_messages_total") >= n_corpus + n_flood,
                 240, "the flood to be committed")
        assert worker.alive(), worker.logs()
        flood_s = time.monotonic() - flood_started

        # Every record exactly once, classified or dead-lettered.
        seen = _read_all(kafka_bootstrap, t, sent)
        tally = _check_outcomes(sent, seen)
        _check_dead_letters(sent, seen)
        assert tally["classified"] >= FLOOD_RECORDS

        final = _check_metrics(worker, sent, tally, baseline, after_corpus)

        # Bounded memory, one process throughout, clean exit.
        status = watch.status()
        watch.stop()
        assert watch.died_at is None and worker.alive() and worker.proc.pid == pid
        peak_mb = status["VmHWM"] / 1024
        code, took = worker.terminate()
        assert code == 0 and took < 30, worker.logs()
        log = worker.log_path.read_text(errors="replace")
        assert log.count('"msg":"worker starting"') == 1, "the worker restarted"
        assert "Traceback" not in log and "fatal Kafka error" not in log, worker.logs()
        assert "FloodOS-" not in log and "rejected by the service" not in log  # no payloads

        print(f"\nHOSTILE corpus={n_corpus} messages flood={n_flood} messages "
              f"records={sent.records()} classified={tally['classified']} "
              f"dead={sum(n for k, n in tally.items() if k != 'classified')} "
              f"by_class={dict(sorted((k, n) for k, n in tally.items() if k != 'classified'))}")
        print(f"HOSTILE memory: RSS when ready {ready_rss_mb:.0f} MB, peak after the corpus "
              f"{corpus_hwm_mb:.0f} MB, peak RSS (VmHWM) {peak_mb:.0f} MB, max sampled VmRSS "
              f"{watch.max_rss_kb / 1024:.0f} MB over {watch.samples} samples; "
              f"bound {PEAK_RSS_BOUND_MB} MB")
        print(f"HOSTILE series: enrollment_failures_total baseline={len(baseline.failures)} "
              f"after_corpus={len(after_corpus.failures)} after_flood={len(final.failures)}; "
              f"all series {baseline.total} -> {after_corpus.total} -> {final.total}")
        print(f"HOSTILE time: flood {flood_s:.1f}s, whole test {time.monotonic() - started:.1f}s; "
              f"broker message.max.bytes={broker_limit}")
        assert peak_mb < PEAK_RSS_BOUND_MB, f"peak RSS {peak_mb:.0f} MB"
    finally:
        if watch is not None:
            watch.stop()
        worker.close()


def test_escape_heavy_unreadable_message_is_dead_lettered_without_stopping_the_worker(
        kafka_bootstrap: str, new_topic: Any, unique_group: str, tmp_path: Path) -> None:
    t = Topics(new_topic(1, "hostile-esc-raw"), new_topic(1, "hostile-esc-out"),
               new_topic(1, "hostile-esc-dlq"))
    sent = Sent()
    value = b"\x01" * 300_000  # valid UTF-8, not JSON; far below every size limit
    _produce(kafka_bootstrap, t.input, [Item("control characters", value, ("not_json",))], sent)
    worker = WorkerProcess(kafka_bootstrap, t, unique_group, log_dir=tmp_path).start()
    try:
        def dead_lettered() -> float:
            if worker.get("/healthz")[0] != 200:  # the port is not open yet
                return 0.0
            return worker.metric("enrollment_events_total", outcome="dead_lettered")
        wait_for(lambda: not worker.alive() or dead_lettered() >= 1, 90,
                 "the message to be dead-lettered, or the worker to exit")
        assert worker.alive(), (f"the worker exited with {worker.proc and worker.proc.poll()}:\n"
                                f"{worker.logs()[-1500:]}")
        seen = Seen()
        _read(kafka_bootstrap, t.dead, seen, expect=1, dead=True, timeout=60, settle=0.5)
        assert worker.terminate()[0] == 0
    finally:
        worker.close()
