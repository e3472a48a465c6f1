"""librdkafka configuration of the consumer and of the dead-letter producer, from the settings.

At-least-once rests on these: auto-commit off (the bridge commits each partition's contiguous
watermark itself, with the map of finished offsets above it as metadata), auto offset store
off, and no partition EOF events. User ``--kafka_config`` entries are applied last (the ones
that would break this are refused by the configuration).
"""

from __future__ import annotations

from typing import Any

from ilagent import __version__
from ilagent.config import KafkaSettings

# consumer properties a producer refuses or ignores with a warning
_CONSUMER_ONLY = frozenset({
    "group.id", "enable.auto.commit", "enable.auto.offset.store", "auto.commit.interval.ms",
    "auto.offset.reset", "enable.partition.eof", "session.timeout.ms",
    "partition.assignment.strategy", "queued.max.messages.kbytes", "statistics.interval.ms",
    "max.poll.interval.ms", "group.instance.id", "fetch.min.bytes", "fetch.max.bytes",
    "max.partition.fetch.bytes", "group.protocol", "isolation.level", "heartbeat.interval.ms",
    "fetch.queue.backoff.ms",
})


def consumer_config(settings: KafkaSettings) -> dict[str, Any]:
    """librdkafka settings of the consumer; user ``--kafka_config`` entries override ours."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.brokers,
        "group.id": settings.group_id,
        "client.id": f"ilagent-py-{__version__}",
        # librdkafka's auto-commit sends a partition only when its position moved; the map of
        # finished offsets must go out while one stuck message holds the position
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": settings.offset_reset,
        "enable.partition.eof": False,
        "session.timeout.ms": 6000,
        "partition.assignment.strategy": "cooperative-sticky",
        "queued.max.messages.kbytes": 16384,
        # a partition's backlog comes 8 MiB per fetch instead of librdkafka's 1 MiB: filtering
        # at full speed waited for fetches (F: 188k instead of 151k messages/s, bench/RESULTS.md).
        # A whole fetch answer stays within the queue's 16 MiB: librdkafka lowers its
        # fetch.max.bytes to queued.max.messages.kbytes (never below message.max.bytes)
        "max.partition.fetch.bytes": 8 * 1024 * 1024,
        # once the local queue is over its thresholds (queued.min.messages, the 16 MiB), the
        # next fetch waits this long: librdkafka's 1 s capped a backlog at about 190k messages/s
        # however fast they were filtered (2.3M/s with 20 ms; bench/RESULTS.md, issue 27)
        "fetch.queue.backoff.ms": 20,
        # every second: lag gauges and readiness (group membership, broker connections)
        "statistics.interval.ms": 1000,
        # a broker that dropped out is tried again at a growing interval (0.5 s to 10 s); while
        # no broker answers, the group coordinator's lookup tries one every backoff.ms / 2
        # (0.25 s; librdkafka's default 100 ms would be every 50 ms), see the README
        "reconnect.backoff.ms": 500,
        "reconnect.backoff.max.ms": 10000,
    }
    config.update(dict(settings.extra))
    return config


def incremental(config: dict[str, Any]) -> bool:
    """True when the group assigns incrementally (cooperative protocol or KIP-848)."""
    return ("cooperative" in str(config.get("partition.assignment.strategy", ""))
            or config.get("group.protocol") == "consumer")


def producer_config(settings: KafkaSettings) -> dict[str, Any]:
    """Settings of the dead-letter producer: the same cluster and security options."""
    config = {k: v for k, v in consumer_config(settings).items() if k not in _CONSUMER_ONLY}
    config.update({"acks": "all", "enable.idempotence": True, "linger.ms": 5})
    return config
