"""What a stored record holds: the kinds of rows a spool keeps, defined once.

The SQLite spool of the HTTP intake and of MQTT's buffer mode stores every row with its
:class:`RecordKind`, and a Kafka-based spool (a later issue) is meant to reuse the same words,
so that a record is read the same way wherever it was kept. Before kinds existed the SQLite
spool told them apart by ``path`` alone; :func:`kind_of_path` is that old reading, used once to
fill the column of older files (and for writers that do not say, such as the MQTT bridge).

Pure data, no I/O.
"""

from __future__ import annotations

import enum


class RecordKind(enum.StrEnum):
    """What a queued row holds, and so how it is delivered."""

    EVENT = "event"  # an ilert event, serialised, posted to its path
    HEARTBEAT = "heartbeat"  # a ping of the heartbeat key in ``integration_key``
    POLICY = "policy"  # an escalation-policy level update (``PolicyUpdate.to_json``)
    MQTT = "mqtt"  # an MQTT message kept as received: topic (in the path) and payload
    DRILL = "drill"  # a fire drill's event from the HTTP intake (ilagent.drills): never sent as is


POLICY_PATH = "ilagent:policy"  # the path of a stored policy update, from before kinds existed
MQTT_PATH_PREFIX = "mqtt:"  # ``mqtt:<topic>``: the path of a stored MQTT message


def mqtt_path(topic: str) -> str:
    """The path an MQTT message is stored under: its topic, marked."""
    return MQTT_PATH_PREFIX + topic


def mqtt_topic(path: str) -> str:
    """The topic of an MQTT message stored under ``path``."""
    return path.removeprefix(MQTT_PATH_PREFIX)


def kind_of_path(path: str) -> RecordKind:
    """The kind of a row written before rows had one, read from its path."""
    if path == POLICY_PATH:
        return RecordKind.POLICY
    if path.startswith(MQTT_PATH_PREFIX):
        return RecordKind.MQTT
    return RecordKind.EVENT
