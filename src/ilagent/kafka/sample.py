"""Messages of one Kafka topic read without a trace: the newest N (``ilagent map --last``), a
time range (``ilagent replay``) or one message (``ilagent trace --offset``); nothing is committed.

Partitions are taken with ``assign()``, never ``subscribe()``: no group is joined, auto-commit and
the offset store are off, and the throwaway group id (``ilagent-map-<hex>``,
``ilagent-replay-<hex>``, ``ilagent-trace-<hex>``) is never committed, so no consumer group is
left behind. :func:`read_last` reads each partition from ``max(low, high - count)`` to its high
watermark at the start and keeps the newest ``count`` by (timestamp, partition, offset);
:func:`read_range` reads each partition from the first offset at or after ``since`` (Kafka's
``offsets_for_times``) to the first at or after ``until`` (else its high watermark at the
start); :func:`read_at` reads the one message at an offset.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import confluent_kafka as kafka
from confluent_kafka import KafkaError, KafkaException

from ilagent.errors import ConfigError, IlagentError, NotFoundError, UsageError
from ilagent.kafka.misconfig import explained, misconfiguration

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
GROUP_PREFIX = "ilagent-map-"
REPLAY_PREFIX, TRACE_PREFIX = "ilagent-replay-", "ilagent-trace-"
MAX_READ = 2_000_000  # a range read holds its messages in memory: beyond this it is refused
BATCH_SIZE, POLL_TIMEOUT = 500, 0.2  # messages one consume() takes at most, and its wait
# over the user's properties: whatever they say, a sample commits, stores and creates nothing
FIXED = {"enable.auto.commit": False, "enable.auto.offset.store": False,
         "enable.partition.eof": True, "allow.auto.create.topics": False}
_native = logging.getLogger("ilagent.librdkafka.sample")  # repeats the one-line error: -vvv only
_native.addFilter(lambda record: logging.getLogger().isEnabledFor(logging.DEBUG))


@dataclass(frozen=True)
class Sampled:
    """One message read; ``timestamp`` in ms since the epoch, -1 when the broker has none."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


def read_last(properties: Mapping[str, str], *, brokers: str, topic: str, count: int,
              timeout: float = DEFAULT_TIMEOUT) -> list[Sampled]:
    """The newest ``count`` messages of ``topic``, oldest first; ``NotFoundError`` for a missing
    topic, ``ConfigError`` when no broker answers within ``timeout`` s or refuses the settings."""
    deadline, errors = time.monotonic() + timeout, list[KafkaError]()
    consumer, group = _consumer(properties, brokers, GROUP_PREFIX, errors)
    logger.info("reading the newest %s of %s as group %s (never committed)", count, topic, group)
    try:
        ends = _assign(consumer, topic, count, deadline, errors)
        return newest(_read(consumer, topic, ends, deadline, errors), count)
    except KafkaException as exc:
        raise _unreachable(errors, _words(exc), timeout) from None
    finally:
        consumer.close()


def read_range(properties: Mapping[str, str], *, brokers: str, topic: str, since: int,
               until: int | None = None, timeout: float = DEFAULT_TIMEOUT) -> list[Sampled]:
    """The messages of ``topic`` from ``since`` to before ``until`` (ms since the epoch; None:
    up to the end at the start), in (timestamp, partition, offset) order; errors as
    :func:`read_last`. ``timeout`` covers reaching the brokers and reading."""
    deadline, errors = time.monotonic() + timeout, list[KafkaError]()
    consumer, group = _consumer(properties, brokers, REPLAY_PREFIX, errors)
    logger.info("reading %s from %s as group %s (never committed)", topic, since, group)
    try:
        partitions = _partitions(consumer, topic, deadline, errors)
        starts = _times(consumer, topic, partitions, since, deadline)
        stops = _times(consumer, topic, partitions, until, deadline) if until is not None else {}
        ends, assigned = {}, []
        for partition in partitions:
            high = _watermarks(consumer, topic, partition, deadline)[1]
            start, stop = starts.get(partition, -1), stops.get(partition, -1)
            end = high if stop < 0 else min(stop, high)
            if 0 <= start < end:
                ends[partition] = end
                assigned.append(kafka.TopicPartition(topic, partition, start))
        total = sum(ends[tp.partition] - tp.offset for tp in assigned)
        if total > MAX_READ:
            raise UsageError(f"{topic} holds {total} messages in that time range, more than "
                             f"{MAX_READ} read at once: give a shorter range")
        consumer.assign(assigned)
        read = _read(consumer, topic, ends, deadline, errors, whole=True)
        return sorted(read, key=lambda m: (m.timestamp, m.partition, m.offset))
    except KafkaException as exc:
        raise _unreachable(errors, _words(exc), timeout) from None
    finally:
        consumer.close()


def read_at(properties: Mapping[str, str], *, brokers: str, topic: str, partition: int,
            offset: int, timeout: float = DEFAULT_TIMEOUT) -> Sampled:
    """The message at ``offset`` of ``topic``'s ``partition``; ``NotFoundError`` for a missing
    topic, ``UsageError`` for a partition or offset the topic does not hold, else as
    :func:`read_last`."""
    deadline, errors = time.monotonic() + timeout, list[KafkaError]()
    consumer, group = _consumer(properties, brokers, TRACE_PREFIX, errors)
    logger.info("reading %s:%s:%s as group %s (never committed)", topic, partition, offset,
                group)
    try:
        partitions = _partitions(consumer, topic, deadline, errors)
        if partition not in partitions:
            raise UsageError(f"the Kafka topic {topic} has no partition {partition} (it has "
                             f"{_spans(partitions)})")
        low, high = _watermarks(consumer, topic, partition, deadline)
        if not low <= offset < high:
            holds = f"offsets {low} to {high - 1}" if high > low else "no message"
            raise UsageError(f"offset {offset} is out of range: {topic}:{partition} holds "
                             f"{holds}")
        consumer.assign([kafka.TopicPartition(topic, partition, offset)])
        read = _read(consumer, topic, {partition: offset + 1}, deadline, errors)
    except KafkaException as exc:
        raise _unreachable(errors, _words(exc), timeout) from None
    finally:
        consumer.close()
    found = [message for message in read if message.offset == offset]
    if not found:  # compacted away, or the deadline passed first
        raise NotFoundError(f"{topic}:{partition}:{offset} could not be read (removed by "
                            "compaction or retention, or not read in time)")
    return found[0]


def _consumer(properties: Mapping[str, str], brokers: str, prefix: str,
              errors: list[KafkaError], *, group: str | None = None
              ) -> tuple[kafka.Consumer, str]:
    """A consumer that commits, stores and creates nothing, and its group id: a throwaway one
    unless ``group`` names one to read (never join) — the queue's depth reads a group's
    committed offsets."""
    group = group or prefix + secrets.token_hex(8)
    config: dict[str, Any] = {
        "bootstrap.servers": brokers, "client.id": prefix.rstrip("-"),
        **properties, **FIXED, "group.id": group, "error_cb": errors.append, "logger": _native}
    try:
        return kafka.Consumer(config), group
    except (KafkaException, ValueError, TypeError) as exc:
        raise ConfigError(f"Kafka refused the configuration: {_words(exc)}") from None


def newest(messages: list[Sampled], count: int) -> list[Sampled]:
    """The last ``count`` (≥ 1) of ``messages`` by (timestamp, partition, offset), oldest first."""
    return sorted(messages, key=lambda m: (m.timestamp, m.partition, m.offset))[-count:]


def _assign(consumer: kafka.Consumer, topic: str, count: int, deadline: float,
            errors: list[KafkaError]) -> dict[int, int]:
    """Assign each partition holding messages from its start; partition → high watermark."""
    ends, starts = {}, []
    for partition in _partitions(consumer, topic, deadline, errors):
        low, high = _watermarks(consumer, topic, partition, deadline)
        if high > low:
            ends[partition] = high
            starts.append(kafka.TopicPartition(topic, partition, max(low, high - count)))
    consumer.assign(starts)
    return ends


def _partitions(consumer: kafka.Consumer, topic: str, deadline: float,
                errors: list[KafkaError]) -> list[int]:
    """The partitions of ``topic``, sorted; ``NotFoundError`` when it does not exist."""
    while True:  # in slices, so that refused credentials end the wait at once
        try:
            metadata = consumer.list_topics(topic, timeout=min(1.0, _left(deadline)))
            break
        except KafkaException:
            consumer.poll(0)  # serves error_cb: librdkafka's words for why
            if time.monotonic() >= deadline or any(map(misconfiguration, errors)):
                raise
    found = metadata.topics.get(topic)
    if found is None or (found.error is not None
                         and found.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
        raise NotFoundError(f"the Kafka topic {topic} does not exist")
    if found.error is not None:
        raise ConfigError(f"the Kafka topic {topic}: {found.error.str()}")
    return sorted(found.partitions)


def _watermarks(consumer: kafka.Consumer, topic: str, partition: int,
                deadline: float) -> tuple[int, int]:
    low, high = consumer.get_watermark_offsets(
        kafka.TopicPartition(topic, partition), timeout=_left(deadline), cached=False)
    return int(low), int(high)


def _times(consumer: kafka.Consumer, topic: str, partitions: list[int], when: int,
           deadline: float) -> dict[int, int]:
    """Partition → the first offset whose timestamp is at or after ``when`` (-1: none)."""
    found = consumer.offsets_for_times(
        [kafka.TopicPartition(topic, partition, when) for partition in partitions],
        timeout=_left(deadline))
    return {tp.partition: tp.offset for tp in found}


def _spans(partitions: list[int]) -> str:
    return f"partitions 0 to {partitions[-1]}" if partitions else "no partition"


def _read(consumer: kafka.Consumer, topic: str, ends: dict[int, int], deadline: float,
          errors: list[KafkaError], *, whole: bool = False) -> list[Sampled]:
    """Consume until every partition reached its end (or the deadline passed: with ``whole``,
    an ``IlagentError``, since a range read in part would tell a wrong story)."""
    read: list[Sampled] = []
    pending = set(ends)
    while pending and (left := deadline - time.monotonic()) > 0:
        for message in consumer.consume(BATCH_SIZE, timeout=min(POLL_TIMEOUT, left)):
            partition, error = message.partition(), message.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                pending.discard(partition)
            elif error is not None:
                errors.append(error)
                if misconfiguration(error):
                    raise _unreachable(errors, error.str(), 0)
            elif partition is not None and partition in pending:  # else: read to its end
                kind, stamp = message.timestamp()
                offset = message.offset() or 0
                if offset < ends[partition]:
                    read.append(Sampled(
                        topic=topic, partition=partition, offset=offset, key=message.key(),
                        timestamp=-1 if kind == kafka.TIMESTAMP_NOT_AVAILABLE else stamp,
                        value=message.value() or b"", headers=_headers(message)))
                if offset >= ends[partition] - 1:
                    pending.discard(partition)
    if pending and whole:
        raise IlagentError(f"partitions {', '.join(map(str, sorted(pending)))} of {topic} were "
                           "not read to the end in time: give a longer --timeout or a shorter "
                           "range")
    if pending:
        logger.warning("Kafka: partitions %s of %s not read to the end in time: shown as far as "
                       "read (%s)", sorted(pending), topic, errors[-1].str() if errors else "")
    return read


def _headers(message: kafka.Message) -> tuple[tuple[str, bytes], ...]:
    found = message.headers() or []
    pairs = found.items() if isinstance(found, dict) else found
    return tuple((name, raw.encode() if isinstance(raw, str) else raw or b"")
                 for name, raw in pairs)


def _unreachable(errors: list[KafkaError], words: str, timeout: float) -> ConfigError:
    """The one line for a cluster that did not answer: a misconfiguration if one was seen."""
    bad = next((error for error in reversed(errors) if misconfiguration(error)), None)
    if bad is not None:
        return ConfigError(explained(bad))
    return ConfigError(f"no Kafka broker answered within {timeout:g} s: "
                       f"{errors[-1].str() if errors else words}")


def _left(deadline: float) -> float:
    return max(0.001, deadline - time.monotonic())


def _words(exc: Exception) -> str:  # librdkafka's words, without the exception's wrapping
    error = exc.args[0] if exc.args else exc
    return (error.str() if isinstance(error, KafkaError) else str(error)).strip()
