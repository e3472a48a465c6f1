"""The Kafka spool's producer without a broker to acknowledge: the intake's wait is bounded by
--spool_produce_timeout and ends as SpoolUnavailable with a Retry-After, never as a 202."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from ilagent.config import KafkaSettings
from ilagent.errors import SpoolUnavailable
from ilagent.kafka.settings import producer_config
from ilagent.kafka.spool_producer import SpoolProducer, brokers_up, topic_warnings
from ilagent.records import RecordKind


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_producer_is_idempotent_and_waits_for_every_replica() -> None:
    """The spool's writes: acks=all and enable.idempotence, with the connection settings."""
    settings = KafkaSettings(brokers="b:9092", spool_topic="s",
                             extra=(("security.protocol", "SSL"),))
    config = producer_config(settings)
    assert config["acks"] == "all" and config["enable.idempotence"] is True
    assert config["security.protocol"] == "SSL" and "group.id" not in config


async def test_no_acknowledgement_in_time_is_spool_unavailable_with_retry_after() -> None:
    """No broker answers: put() gives up after the timeout, asking the client to come back."""
    producer = SpoolProducer(settings=KafkaSettings(brokers=f"127.0.0.1:{closed_port()}",
                                                    spool_topic="spool"), timeout=0.3)
    producer.start()
    try:
        started = time.monotonic()
        with pytest.raises(SpoolUnavailable) as refused:
            await producer.put(RecordKind.EVENT, integration_key="il1api123", path="/events",
                               event="{}")
        assert time.monotonic() - started < 2.0
        assert refused.value.retry_after == 1
        assert "may still be stored" in str(refused.value)
        assert "il1api123" not in str(refused.value)
    finally:
        await producer.close(timeout=0.1)
    assert producer.readiness() == {"error": "the spool producer is not running"}


async def test_a_closed_producer_refuses_at_once() -> None:
    """After the shutdown began nothing more is accepted (503, not a 202 it cannot keep)."""
    producer = SpoolProducer(settings=KafkaSettings(brokers="127.0.0.1:1", spool_topic="s"),
                             timeout=5)
    producer.start()
    await producer.close(timeout=0.1)
    with pytest.raises(SpoolUnavailable):
        await producer.put(RecordKind.EVENT, integration_key="k", path="/events", event="{}")


@pytest.mark.parametrize(("settings", "warned"), [
    ({"retention.ms": "604800000", "cleanup.policy": "delete"}, []),
    ({"retention.ms": "-1", "cleanup.policy": "delete"}, []),
    ({"retention.ms": "3600000", "cleanup.policy": "delete"}, ["retention.ms=3600000"]),
    ({"retention.ms": "604800000", "cleanup.policy": "compact,delete"}, ["cleanup.policy"]),
    ({"retention.ms": "0", "cleanup.policy": "compact"}, ["retention.ms=0", "cleanup.policy"]),
])
def test_topic_settings_that_could_delete_unsent_events_are_named(
        settings: dict[str, str], warned: list[str]) -> None:
    """A retention under 7 days or compaction is named; infinite retention is fine."""
    found = topic_warnings(settings)
    assert len(found) == len(warned)
    assert all(line.startswith(start) for line, start in zip(found, warned, strict=True))


@pytest.mark.parametrize(("raw", "expected"), [
    ('{"brokers": {"b:9092/1": {"state": "UP", "nodeid": 1}}}', 1),
    ('{"brokers": {"b:9092/bootstrap": {"state": "INIT", "nodeid": -1}}}', 0),
    ('{"brokers": {"a/1": {"state": "UP"}, "b/2": {"state": "CONNECT"}, "c/3": '
     '{"state": "UP"}}}', 2),
    ("{}", 0),
    ("not json", None),
    ("[]", None),
])
def test_brokers_up_counts_the_connected_brokers_of_a_statistics_report(
        raw: str, expected: int | None) -> None:
    """A statistics report's connected brokers; one that does not read is None."""
    assert brokers_up(raw) == expected


async def test_no_broker_reachable_makes_the_producer_not_ready() -> None:
    """librdkafka's all-brokers-down error reaches /ready/intake within seconds."""
    producer = SpoolProducer(settings=KafkaSettings(brokers=f"127.0.0.1:{closed_port()}",
                                                    spool_topic="spool"), timeout=1)
    producer.start()
    try:
        deadline = time.monotonic() + 10
        while producer.readiness() is None:
            assert time.monotonic() < deadline, "still ready with no broker"
            await asyncio.sleep(0.05)
        assert "down" in str(producer.readiness())
    finally:
        await producer.close(timeout=0.1)
