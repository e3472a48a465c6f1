"""The newest messages of one Kafka topic, read for ``ilagent map --last``; nothing is committed.

Partitions are taken with ``assign()``, never ``subscribe()``: no group is joined, auto-commit and
the offset store are off, and the throwaway group id ``ilagent-map-<hex>`` is never committed, so
no consumer group is left behind. Each partition is read from ``max(low, high - count)`` to its
high watermark at the start; the newest ``count`` by (timestamp, partition, offset) are kept.
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

from ilagent.errors import ConfigError, NotFoundError
from ilagent.kafka.consumer import misconfiguration

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
GROUP_PREFIX = "ilagent-map-"
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


def read_last(properties: Mapping[str, str], *, brokers: str, topic: str, count: int,
              timeout: float = DEFAULT_TIMEOUT) -> list[Sampled]:
    """The newest ``count`` messages of ``topic``, oldest first; ``NotFoundError`` for a missing
    topic, ``ConfigError`` when no broker answers within ``timeout`` s or refuses the settings."""
    deadline, group = time.monotonic() + timeout, GROUP_PREFIX + secrets.token_hex(8)
    errors: list[KafkaError] = []
    config: dict[str, Any] = {
        "bootstrap.servers": brokers, "client.id": GROUP_PREFIX.rstrip("-"),
        **properties, **FIXED, "group.id": group, "error_cb": errors.append, "logger": _native}
    try:
        consumer = kafka.Consumer(config)
    except (KafkaException, ValueError, TypeError) as exc:
        raise ConfigError(f"Kafka refused the configuration: {_words(exc)}") from None
    logger.info("reading the newest %s of %s as group %s (never committed)", count, topic, group)
    try:
        ends = _assign(consumer, topic, count, deadline, errors)
        return newest(_read(consumer, topic, ends, deadline, errors), count)
    except KafkaException as exc:
        raise _unreachable(errors, _words(exc), timeout) from None
    finally:
        consumer.close()


def newest(messages: list[Sampled], count: int) -> list[Sampled]:
    """The last ``count`` (≥ 1) of ``messages`` by (timestamp, partition, offset), oldest first."""
    return sorted(messages, key=lambda m: (m.timestamp, m.partition, m.offset))[-count:]


def _assign(consumer: kafka.Consumer, topic: str, count: int, deadline: float,
            errors: list[KafkaError]) -> dict[int, int]:
    """Assign each partition holding messages from its start; partition → high watermark."""
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
    ends, starts = {}, []
    for partition in sorted(found.partitions):
        low, high = consumer.get_watermark_offsets(
            kafka.TopicPartition(topic, partition), timeout=_left(deadline), cached=False)
        if high > low:
            ends[partition] = high
            starts.append(kafka.TopicPartition(topic, partition, max(low, high - count)))
    consumer.assign(starts)
    return ends


def _read(consumer: kafka.Consumer, topic: str, ends: dict[int, int], deadline: float,
          errors: list[KafkaError]) -> list[Sampled]:
    """Consume until every partition reached its end (or the deadline passed)."""
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
                        value=message.value() or b""))
                if offset >= ends[partition] - 1:
                    pending.discard(partition)
    if pending:
        logger.warning("Kafka: partitions %s of %s not read to the end in time: shown as far as "
                       "read (%s)", sorted(pending), topic, errors[-1].str() if errors else "")
    return read


def _unreachable(errors: list[KafkaError], words: str, timeout: float) -> ConfigError:
    """The one line for a cluster that did not answer: a misconfiguration if one was seen."""
    bad = next((error for error in reversed(errors) if misconfiguration(error)), None)
    if bad is not None:
        return ConfigError(f"{misconfiguration(bad)}: {bad.str()}")
    return ConfigError(f"no Kafka broker answered within {timeout:g} s: "
                       f"{errors[-1].str() if errors else words}")


def _left(deadline: float) -> float:
    return max(0.001, deadline - time.monotonic())


def _words(exc: Exception) -> str:  # librdkafka's words, without the exception's wrapping
    error = exc.args[0] if exc.args else exc
    return (error.str() if isinstance(error, KafkaError) else str(error)).strip()
