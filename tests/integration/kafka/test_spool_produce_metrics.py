"""The Kafka spool producer's metrics on the real broker: each put() is counted by its result
(acked, timeout, shutdown) and an acknowledged one's wait is observed."""

from __future__ import annotations

import socket

import pytest

from helpers import create_topic, unique
from ilagent.config import KafkaSettings
from ilagent.errors import SpoolUnavailable
from ilagent.kafka.spool_producer import SpoolProducer
from ilagent.metrics import Metrics
from ilagent.records import RecordKind


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def put(producer: SpoolProducer) -> str:
    return await producer.put(RecordKind.EVENT, integration_key="il1apiMETRICS01",
                              path="/v1/events/http/il1apiMETRICS01", event="{}")


async def test_acknowledged_events_are_counted_with_their_wait(kafka_bootstrap: str) -> None:
    """Three events the broker acknowledged: acked 3, three waits observed; after close: a
    refused put() counted as shutdown."""
    topic = create_topic(kafka_bootstrap, unique("spoolmetrics"))
    metrics = Metrics()
    producer = SpoolProducer(settings=KafkaSettings(brokers=kafka_bootstrap, spool_topic=topic),
                             timeout=10, metrics=metrics)
    producer.start()
    try:
        for _ in range(3):
            await put(producer)
    finally:
        await producer.close(timeout=5)
    with pytest.raises(SpoolUnavailable):
        await put(producer)
    assert sample(metrics, "ilagent_spool_produced_total", result="acked") == 3
    assert sample(metrics, "ilagent_spool_produce_seconds_count") == 3
    assert 0 < sample(metrics, "ilagent_spool_produce_seconds_sum") < 30
    assert sample(metrics, "ilagent_spool_produced_total", result="shutdown") == 1


async def test_no_acknowledgement_in_time_is_counted_as_timeout() -> None:
    """No broker listens: the put() that answers 503 after the timeout counts as timeout."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    metrics = Metrics()
    producer = SpoolProducer(settings=KafkaSettings(brokers=f"127.0.0.1:{port}",
                                                    spool_topic="spool"),
                             timeout=0.3, metrics=metrics)
    producer.start()
    try:
        with pytest.raises(SpoolUnavailable):
            await put(producer)
    finally:
        await producer.close(timeout=0.1)
    assert sample(metrics, "ilagent_spool_produced_total", result="timeout") == 1
    assert sample(metrics, "ilagent_spool_produce_seconds_count") == 0
