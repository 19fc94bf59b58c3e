"""Read one topic from where the job's progress (or ``--since``) says to the end offsets taken
at start, and stop: the jobs never follow a topic.

Each partition is a :class:`PartitionRange`. Its end is the high watermark when the job
started (or the first offset at ``--until``); the consumer reads with ``read_committed`` and
partition-EOF events, so a partition whose last offsets are transaction markers or aborted
records still ends (the EOF event carries the offset reached). Memory stays bounded whatever
the topic size: batches of ``batch_size`` messages, nothing kept once handled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import cast

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, Message, TopicPartition

from worker.stream.clients import consumer_error_kind
from worker.stream.commit import FatalKafkaError
from worker.stream.settings import ConfigError

log = logging.getLogger("worker.jobs")


@dataclass(slots=True)
class PartitionRange:
    partition: int
    start: int  # first offset to read
    end: int  # exclusive, fixed when the job started
    position: int  # next offset not yet handed out

    @property
    def done(self) -> bool:
        return self.position >= self.end


def plan(consumer: Consumer, topic: str, *, since_ms: int | None, until_ms: int | None,
         timeout_s: float = 30.0) -> list[PartitionRange]:
    """Per partition: start at the progress group's committed offset, the first offset at
    ``since_ms`` or the beginning, whichever is latest; end at the high watermark or the first
    offset at ``until_ms``, whichever is earliest. Raises ConfigError for a missing topic."""
    metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        raise ConfigError(f"topic {topic!r} does not exist (or is not visible to this user)")
    partitions = sorted(metadata.partitions)
    committed = {tp.partition: tp.offset for tp in consumer.committed(
        [TopicPartition(topic, p) for p in partitions], timeout=timeout_s)}
    since = _offsets_at(consumer, topic, partitions, since_ms, timeout_s)
    until = _offsets_at(consumer, topic, partitions, until_ms, timeout_s)
    ranges = []
    for p in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
        start = max(low, since.get(p, low), committed[p] if committed[p] != OFFSET_INVALID else low)
        end = min(high, until.get(p, high))
        ranges.append(PartitionRange(p, min(start, end), end, min(start, end)))
    return ranges


def _offsets_at(consumer: Consumer, topic: str, partitions: list[int], when_ms: int | None,
                timeout_s: float) -> dict[int, int]:
    """First offset whose timestamp is at or after ``when_ms``; absent when there is none
    (the caller then uses the partition's end)."""
    if when_ms is None:
        return {}
    found = consumer.offsets_for_times([TopicPartition(topic, p, when_ms) for p in partitions],
                                       timeout=timeout_s)
    return {tp.partition: tp.offset for tp in found if tp.offset >= 0}


class BoundedReader:
    """Hands out the messages inside the ranges, at most ``max_records`` in all."""

    def __init__(self, consumer: Consumer, topic: str, ranges: list[PartitionRange], *,
                 batch_size: int, max_records: int | None) -> None:
        self.consumer, self.topic, self.batch_size = consumer, topic, batch_size
        self.ranges = {r.partition: r for r in ranges}
        self.max_records, self.handed_out = max_records, 0

    @property
    def total(self) -> int:
        """Offsets left to read: an upper bound on messages (markers take offsets too)."""
        left = sum(r.end - r.start for r in self.ranges.values())
        return left if self.max_records is None else min(left, self.max_records)

    def done(self) -> bool:
        limit_reached = self.max_records is not None and self.handed_out >= self.max_records
        return limit_reached or all(r.done for r in self.ranges.values())

    def start(self) -> None:
        self.consumer.assign([TopicPartition(self.topic, r.partition, r.start)
                              for r in self.ranges.values() if not r.done])

    def next_batch(self, timeout_s: float) -> list[Message]:
        """Messages to handle, in partition order; EOF events and errors are dealt with here."""
        wanted: list[Message] = []
        ranges, limit = self.ranges, self.max_records
        room = None if limit is None else limit - self.handed_out
        if room is not None and room <= 0:
            return wanted
        for message in self.consumer.consume(self.batch_size, timeout_s):
            # Per message, so plain attribute reads: no properties, no cast() calls.
            part = ranges.get(message.partition())  # type: ignore[arg-type]
            err = message.error()
            if err is not None:
                self._on_error(err, message, part)
                continue
            offset: int = message.offset()  # type: ignore[assignment]
            if part is None or offset < part.position or part.position >= part.end:
                continue
            if offset >= part.end:
                self._finish(part, part.end)
                continue
            part.position = offset + 1
            wanted.append(message)
            if part.position >= part.end:
                self._finish(part, part.end)
            if room is not None and len(wanted) >= room:
                break
        self.handed_out += len(wanted)
        return wanted

    def rewind(self, first: dict[int, int], handed_out: int) -> None:
        """After an abort: the consumer was sought back to ``first``; read from there again."""
        self.handed_out = handed_out
        for partition, offset in first.items():
            part = self.ranges[partition]
            if part.done:
                self.consumer.resume([TopicPartition(self.topic, partition)])
            part.position = min(part.position, offset)

    def _on_error(self, err: KafkaError, message: Message, part: PartitionRange | None) -> None:
        if err.code() == KafkaError._PARTITION_EOF:
            reached = cast(int, message.offset())
            if part is not None and not part.done and reached >= part.end:
                self._finish(part, reached)
            return
        if consumer_error_kind(err) == "fatal":
            raise FatalKafkaError(f"consume: {err}")
        log.warning("Kafka client error", extra={"error": str(err)})

    def _finish(self, part: PartitionRange, reached: int) -> None:
        part.position = max(part.position, reached)
        # Stop fetching it: anything past the end was written after the job started.
        self.consumer.pause([TopicPartition(self.topic, part.partition)])
