"""What the MQTT connection makes of the broker's answers (without a broker: its callbacks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from ilagent.config import MqttSettings
from ilagent.metrics import Metrics
from ilagent.mqtt.connection import MqttConnection

CLIENT: Any = object()  # stands for the paho client of the current connection


def connection(*, on_disconnected: Callable[[], None] = lambda: None,
               **settings: Any) -> MqttConnection:
    conn = MqttConnection(
        settings=MqttSettings(host="broker", client_id="c", qos=1,
                              event_topics=("a/#", "b/+"), **settings),
        metrics=Metrics(), on_message=lambda _m: None, on_connected=lambda _s: None,
        on_disconnected=on_disconnected)
    conn._client = CLIENT
    return conn


def test_a_refused_subscription_keeps_it_not_ready_and_names_the_topic() -> None:
    """SUBACK 0x87 for one filter: not ready, /ready says which topic was refused."""
    conn = connection()
    conn.connected = True
    conn._subscribed(CLIENT, [1, 0x87])
    assert conn.readiness() == {"connected": True, "subscribed": False,
                                "refused_topics": ["b/+"],
                                "error": "the broker refused the subscription to b/+"}
    conn._subscribed(CLIENT, [1, 1])
    assert conn.readiness() is None


def test_a_refused_login_before_the_first_connection_is_fatal() -> None:
    """CONNACK "bad user name or password" at start: the daemon exits 2 with it."""
    conn = connection()
    conn._connected(CLIENT, False, ReasonCode(PacketTypes.CONNACK, identifier=0x86))
    assert "bad user name or password" in conn.fatal


def test_a_refused_login_after_a_good_start_is_retried() -> None:
    """The same after the daemon once ran: a warning and a reconnect, not an exit."""
    conn = connection()
    conn.ever_connected = True
    conn._connected(CLIENT, False, ReasonCode(PacketTypes.CONNACK, identifier=0x86))
    assert conn.fatal == "" and "password" in conn.last_error


def test_answers_of_an_old_connection_are_ignored() -> None:
    """A callback of a client that is no longer current changes nothing."""
    conn = connection()
    conn._subscribed(object(), [1, 1])
    assert not conn.subscribed


def test_an_ack_the_client_refuses_is_reported() -> None:
    """paho answers MQTT_ERR_NO_CONN (its socket is gone before the loss reached the event
    loop): ack() says so, as it does once the connection is known to be down."""
    conn = connection()
    conn._client = Client(CallbackAPIVersion.VERSION2, manual_ack=True)  # never connected
    conn.connected = True
    assert conn.ack(1) is False
    conn.connected = False
    assert conn.ack(1) is False


def test_the_owner_hears_each_lost_connection_once() -> None:
    """The end of a connection that had its CONNACK is reported once, however it is noticed."""
    ends: list[str] = []
    conn = connection(on_disconnected=lambda: ends.append("down"))
    conn._disconnected(CLIENT, ReasonCode(PacketTypes.DISCONNECT, identifier=0x80))
    assert ends == []  # no CONNACK yet: nothing was up
    conn.connected = True
    conn._disconnected(CLIENT, ReasonCode(PacketTypes.DISCONNECT, identifier=0x80))
    conn._disconnected(CLIENT, ReasonCode(PacketTypes.DISCONNECT, identifier=0x80))
    assert ends == ["down"]
