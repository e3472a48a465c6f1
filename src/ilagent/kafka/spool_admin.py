"""``ilagent queue`` on a Kafka spool (``--spool kafka:TOPIC``): the reading and writing it does.

What waits is the group's lag on the spool topic (:func:`spool_depth`: each partition's high
watermark less the group's committed offset, read with the group's id but without joining it,
committing or storing anything); the dead letters are the records of ``--dlq_topic`` that came
from the spool topic, read with :mod:`ilagent.kafka.sample`'s assign-only helpers; a retry
produces a dead letter's record again to the spool topic, in the spool's record format
(:mod:`ilagent.records`), idempotent with ``acks=all`` (:func:`retry`). The dead-letter topic is
append-only: a retried letter stays in it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import confluent_kafka as kafka
from confluent_kafka import KafkaError, KafkaException

from ilagent.errors import ConfigError, ResourceError, UsageError
from ilagent.kafka.sample import (
    Sampled,
    _consumer,
    _native,
    _partitions,
    _unreachable,
    _watermarks,
    _words,
    read_at,
    read_last,
)
from ilagent.kafka.settings import _CONSUMER_ONLY
from ilagent.records import RecordKind, StoredRecord, Unreadable, read_spool_record, spool_record

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
SOURCE_TOPIC = "ilagent.source.topic"  # the dead-letter writer's header naming the source


@dataclass(frozen=True)
class PartitionDepth:
    """One partition of the spool topic: its offsets and the group's committed one."""

    partition: int
    low: int
    high: int
    committed: int | None  # None: the group has committed nothing on this partition

    @property
    def waiting(self) -> int:
        """Records not yet committed by the group (all it holds when nothing is)."""
        start = self.low if self.committed is None else max(self.committed, self.low)
        return max(0, self.high - start)


@dataclass(frozen=True)
class Retried:
    """A dead letter produced again: its position in the DLQ topic and in the spool topic."""

    letter_partition: int
    letter_offset: int
    partition: int
    offset: int


def spool_depth(properties: Mapping[str, str], *, brokers: str, topic: str, group: str,
                timeout: float = DEFAULT_TIMEOUT) -> list[PartitionDepth]:
    """Each partition of ``topic`` with the committed offset of ``group``; ``NotFoundError``
    for a missing topic, ``ConfigError`` when no broker answers within ``timeout`` s."""
    deadline, errors = time.monotonic() + timeout, list[KafkaError]()
    consumer, _ = _consumer(properties, brokers, "ilagent-queue", errors, group=group)
    try:
        partitions = _partitions(consumer, topic, deadline, errors)
        marks = {p: _watermarks(consumer, topic, p, deadline) for p in partitions}
        found = consumer.committed([kafka.TopicPartition(topic, p) for p in partitions],
                                   timeout=max(0.001, deadline - time.monotonic()))
    except KafkaException as exc:
        raise _unreachable(errors, _words(exc), timeout) from None
    finally:
        consumer.close()
    committed = {tp.partition: tp.offset for tp in found}
    return [PartitionDepth(partition=p, low=marks[p][0], high=marks[p][1],
                           committed=committed[p] if committed.get(p, -1) >= 0 else None)
            for p in partitions]


def topic_size(properties: Mapping[str, str], *, brokers: str, topic: str,
               timeout: float = DEFAULT_TIMEOUT) -> int:
    """How many records ``topic`` holds (every partition's high less low watermark)."""
    return sum(d.high - d.low for d in spool_depth(properties, brokers=brokers, topic=topic,
                                                   group="ilagent-queue-size", timeout=timeout))


def source_topic(letter: Sampled) -> str:
    """The topic a dead letter came from (its writer's header; "" when it has none)."""
    return next((raw.decode(errors="replace") for name, raw in letter.headers
                 if name == SOURCE_TOPIC), "")


def dead_letters(properties: Mapping[str, str], *, brokers: str, dlq_topic: str,
                 spool_topic: str, count: int, timeout: float = DEFAULT_TIMEOUT
                 ) -> tuple[list[Sampled], int]:
    """The spool's dead letters among the newest ``count`` records of ``dlq_topic``, oldest
    first, and how many of those came from other topics."""
    read = read_last(properties, brokers=brokers, topic=dlq_topic, count=count, timeout=timeout)
    mine = [letter for letter in read if source_topic(letter) == spool_topic]
    return mine, len(read) - len(mine)


def retry(properties: Mapping[str, str], *, brokers: str, dlq_topic: str, spool_topic: str,
          positions: Sequence[tuple[int, int]],
          timeout: float = DEFAULT_TIMEOUT) -> list[Retried]:
    """Produce the dead letters at ``positions`` (partitions and offsets of ``dlq_topic``) to
    ``spool_topic`` again; in the order of ``positions``.

    Every letter is read and checked before the first is produced: one that did not come from
    the spool or does not read as a spool record is a ``UsageError`` and nothing is produced."""
    records = []
    for partition, offset in positions:
        letter = read_at(properties, brokers=brokers, topic=dlq_topic, partition=partition,
                         offset=offset, timeout=timeout)
        where = f"{dlq_topic}:{partition}:{offset}"
        if source_topic(letter) != spool_topic:
            raise UsageError(f"{where} is not a dead letter of the spool {spool_topic} (it came "
                             f"from {source_topic(letter) or 'no ilagent source'}); nothing "
                             "was produced")
        record = read_spool_record(letter.key, letter.value, letter.headers)
        if isinstance(record, Unreadable) or record.kind not in set(RecordKind):
            why = record.detail if isinstance(record, Unreadable) else f"kind {record.kind}"
            raise UsageError(f"{where} cannot be retried: it does not read as a spool record "
                             f"({why}); nothing was produced")
        records.append(((partition, offset), record))
    return _produce(properties, brokers=brokers, topic=spool_topic, records=records,
                    timeout=timeout)


def _produce(properties: Mapping[str, str], *, brokers: str, topic: str,
             records: list[tuple[tuple[int, int], StoredRecord]],
             timeout: float) -> list[Retried]:
    config: dict[str, Any] = {
        "bootstrap.servers": brokers, "client.id": "ilagent-queue",
        **{k: v for k, v in properties.items() if k not in _CONSUMER_ONLY},
        "acks": "all", "enable.idempotence": True, "logger": _native}
    try:
        producer = kafka.Producer(config)
    except (KafkaException, ValueError, TypeError) as exc:
        raise ConfigError(f"Kafka refused the producer's configuration: {_words(exc)}") from None
    done: dict[tuple[int, int], Retried] = {}
    failed: list[str] = []
    for letter, record in records:
        def report(error: KafkaError | None, message: kafka.Message,
                   letter: tuple[int, int] = letter) -> None:
            if error is not None:
                failed.append(error.str())
            else:
                done[letter] = Retried(letter[0], letter[1], message.partition() or 0,
                                       message.offset() or 0)

        key, value, headers = spool_record(RecordKind(record.kind),
                                           integration_key=record.integration_key,
                                           path=record.path, event=record.event)
        sent: list[tuple[str, str | bytes | None]] = list(headers)
        producer.produce(topic, key=key, value=value, headers=sent, on_delivery=report)
    if producer.flush(timeout) > 0 or failed:
        raise ResourceError(f"{len(records) - len(done)} of {len(records)} dead letter(s) were "
                            f"not acknowledged by {topic} within {timeout:g} s "
                            f"({failed[0] if failed else 'no answer'}); those produced: "
                            f"{len(done)} (retrying again may send some twice)")
    return [done[letter] for letter, _record in records]
