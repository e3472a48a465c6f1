"""One MQTT message, published at QoS 1 on a short connection of its own (the local fallback).

A blocking call, meant for a thread: connect, wait for the CONNACK, publish, wait for the
broker's PUBACK, disconnect — all within one ``timeout``. The connection has a clean session
and a client id of its own, so it never touches the consuming connection's persistent session
or its acknowledgement window (:mod:`ilagent.mqtt.connection`), and a broker that is slow or
gone costs the daemon one thread for at most ``timeout`` seconds. Besides the connection, the
only module that loads paho-mqtt.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from ilagent.config import MqttSettings
from ilagent.mqtt import tls

QOS = 1


class PublishError(Exception):
    """The broker did not take the message; the text says why (no secrets in it)."""


def publish_once(settings: MqttSettings, topic: str, payload: bytes, *, timeout: float,
                 retain: bool = False) -> None:
    """Publish ``payload`` to ``topic`` at QoS 1 and return once the broker acknowledged it;
    raises :class:`PublishError` otherwise."""
    deadline = time.monotonic() + timeout
    v5 = settings.version == "5"
    client = Client(CallbackAPIVersion.VERSION2, client_id=settings.client_id,
                    clean_session=None if v5 else True,
                    protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
                    reconnect_on_failure=False)
    client.connect_timeout = timeout
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        try:
            client.tls_set_context(tls.context(settings))
        except tls.TlsFilesError as exc:
            raise PublishError(f"TLS files: {exc}") from None
    answers: dict[str, ReasonCode | None] = {}
    connected, acknowledged = threading.Event(), threading.Event()

    def on_connect(_c: Any, _u: Any, _flags: Any, reason: ReasonCode, _p: Any) -> None:
        answers["connect"] = reason
        connected.set()

    def on_publish(_c: Any, _u: Any, _mid: int, reason: ReasonCode, _p: Any) -> None:
        answers["publish"] = reason
        acknowledged.set()

    def on_disconnect(_c: Any, _u: Any, _flags: Any, reason: ReasonCode, _p: Any) -> None:
        answers.setdefault("lost", reason)
        connected.set()
        acknowledged.set()

    client.on_connect, client.on_publish = on_connect, on_publish
    client.on_disconnect = on_disconnect
    try:
        client.connect(settings.host, settings.port, keepalive=max(10, int(timeout) * 2))
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError; ValueError: a bad host
        raise PublishError(f"cannot connect: {getattr(exc, 'strerror', None) or exc}") from None
    client.loop_start()
    try:
        _publish(client, topic, payload, retain=retain, deadline=deadline, answers=answers,
                 connected=connected, acknowledged=acknowledged)
    finally:
        client.disconnect()
        client.loop_stop()


def _publish(client: Client, topic: str, payload: bytes, *, retain: bool, deadline: float,
             answers: dict[str, ReasonCode | None], connected: threading.Event,
             acknowledged: threading.Event) -> None:
    if not connected.wait(max(0.0, deadline - time.monotonic())):
        raise PublishError("the broker did not answer the connect request in time")
    reason = answers.get("connect")
    if reason is None or reason.is_failure:
        raise PublishError(f"the broker refused the connection ({reason or answers.get('lost')})")
    info = client.publish(topic, payload, qos=QOS, retain=retain)
    if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
        raise PublishError(f"publishing failed ({info.rc.name})")
    if not acknowledged.wait(max(0.0, deadline - time.monotonic())):
        raise PublishError("the broker did not acknowledge the message in time")
    reason = answers.get("publish")
    if reason is None:
        raise PublishError(f"the connection was lost before the acknowledgement "
                           f"({answers.get('lost')})")
    if reason.is_failure:  # MQTT 5: e.g. not authorised for the topic
        raise PublishError(f"the broker refused the message ({reason})")
