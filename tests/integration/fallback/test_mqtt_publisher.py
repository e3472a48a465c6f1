"""The local fallback's MQTT publisher on the session's Mosquitto: one retained QoS 1 message on a
short connection of its own, and a clear reason when the broker does not take it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from receivers import Subscriber

from helpers import unique, wait_until
from ilagent.config import MqttSettings
from ilagent.mqtt.publisher import PublishError, publish_once


@pytest.fixture
def topic() -> str:
    return f"plant3/{unique('horn')}"


@pytest.fixture
def recorder(mosquitto: Any, topic: str) -> Iterator[Subscriber]:
    found = Subscriber(mosquitto.ports["plain"], topic)
    yield found
    found.close()


def settings(port: int, **extra: Any) -> MqttSettings:
    return MqttSettings(host="127.0.0.1", port=port, client_id=unique("ilagent-fallback"),
                        **extra)


@pytest.mark.parametrize("version", ["5", "3.1.1"])
def test_one_message_is_published_retained_and_acknowledged(
        mosquitto: Any, recorder: Subscriber, topic: str, version: str) -> None:
    """publish_once returns after the PUBACK; a subscriber has the message, and one that
    subscribes later still gets it (retained)."""
    publish_once(settings(mosquitto.ports["plain"], version=version), topic,
                 b'{"status": "ilert_unreachable"}', timeout=5, retain=True)
    wait_until(recorder.received, timeout=10, what="the alarm at the subscriber")
    late = Subscriber(mosquitto.ports["plain"], topic)
    try:
        wait_until(late.received, timeout=10, what="the retained alarm")
        assert late.received() == [{"status": "ilert_unreachable"}]
    finally:
        late.close()


def test_a_password_protected_broker_takes_the_right_password(mosquitto: Any) -> None:
    """User and password are sent; a wrong password is a refusal that says so."""
    port = mosquitto.ports["auth"]
    publish_once(settings(port, username="ilagent", password=mosquitto.password), "t/a", b"{}",
                 timeout=5)
    with pytest.raises(PublishError, match="refused the connection"):
        publish_once(settings(port, username="ilagent", password="wrong-password-123",
                              version="3.1.1"), "t/a", b"{}", timeout=5)


def test_tls_verifies_the_broker_with_the_ca(mosquitto: Any) -> None:
    """--fallback_mqtt_tls with the CA: published over TLS."""
    publish_once(settings(mosquitto.ports["tls"], tls=True, ca=str(mosquitto.certs / "ca.pem")),
                 "t/tls", b"{}", timeout=5)


def test_no_broker_is_a_reason_within_the_timeout() -> None:
    """Nothing listens at the port: PublishError naming the connection failure."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(PublishError, match="cannot connect: Connection refused"):
        publish_once(settings(port), "t/x", b"{}", timeout=2)
