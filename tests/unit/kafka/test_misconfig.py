"""librdkafka's errors read as the setting to fix: above all a broker address that is no Kafka
listener, which librdkafka reports only as a response too large for receive.message.max.bytes."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from ilagent.kafka.misconfig import PLAINTEXT_ON_TLS, explained, misconfiguration


def too_large(head: bytes, state: str = "APIVERSION_QUERY") -> KafkaError:
    """librdkafka's error for an answer whose first four bytes are ``head``."""
    size = int.from_bytes(head, "big")
    return KafkaError(KafkaError._TRANSPORT,
                      f"10.0.0.9:9092/bootstrap: Receive failed: Invalid response size {size} "
                      f"(0..100000000): increase receive.message.max.bytes (after 0ms in state "
                      f"{state})")


@pytest.mark.parametrize(("head", "named"), [
    pytest.param(b"HTTP", "answered like an HTTP server", id="http"),
    pytest.param(b"SSH-", "answered like an SSH server", id="ssh"),
    pytest.param(b"\x07\x5b\xcd\x15", "answered like another server", id="unknown"),
])
def test_a_peer_that_is_no_kafka_listener_is_named(head: bytes, named: str) -> None:
    """The first request's answer names who answered and the option to check, and the line
    drops librdkafka's advice to raise the limit, which would not help."""
    problem = misconfiguration(too_large(head))
    assert problem.startswith("not a Kafka listener: ") and named in problem, problem
    assert "check the host and port in --kafka_brokers" in problem
    line = explained(too_large(head))
    assert line.startswith(problem + ": 10.0.0.9:9092/bootstrap: ")
    assert "receive.message.max.bytes" not in line and "(after 0ms in state" in line, line


def test_a_tls_alert_is_a_plaintext_client_on_a_tls_port() -> None:
    """A TLS listener answers a plaintext hello with an alert record (0x15 0x03 …)."""
    assert misconfiguration(too_large(b"\x15\x03\x03\x00")) == PLAINTEXT_ON_TLS


def test_a_large_answer_of_a_broker_later_on_is_no_misconfiguration() -> None:
    """Past the first request, a size that spells no other protocol may be a real broker's
    answer over the limit: not a reason to end the start."""
    assert misconfiguration(too_large(b"\x07\x5b\xcd\x15", state="UP")) == ""
    assert misconfiguration(too_large(b"HTTP", state="UP")).startswith("not a Kafka listener")


def test_other_errors_are_no_misconfiguration() -> None:
    assert misconfiguration(KafkaError(KafkaError._TRANSPORT, "Connection refused")) == ""
