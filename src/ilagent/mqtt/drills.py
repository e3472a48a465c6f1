"""MQTT fire drills: the drill message published to the drill topic on the daemon's own
connection, at QoS 1, marked by the MQTT 5 user property ``ilagent.drill`` (see
:mod:`ilagent.drills`).

The daemon is subscribed to the topic, so the broker sends the message back to it. MQTT 3.1.1
has no properties to mark it with, and with ``--mqtt_shared_group`` another replica may be the
one to receive it: both are refused at start. Not connected is a failure at ``sent``.
"""

from __future__ import annotations

from ilagent.drills.sending import Sent
from ilagent.mqtt.connection import MqttConnection

SOURCE = "mqtt"


class MqttDrills:
    """Publishes drill messages to ``topic``."""

    source = SOURCE

    def __init__(self, *, connection: MqttConnection, topic: str) -> None:
        self._connection = connection
        self._topic = topic

    def start(self) -> None:
        """Nothing to start: the daemon's connection publishes."""

    async def close(self) -> None:
        """Nothing to close."""

    async def send(self, drill_id: str, sample: bytes) -> Sent:
        error = self._connection.publish_drill(self._topic, sample, drill_id)
        return Sent(error=error) if error else Sent(where=self._topic)
