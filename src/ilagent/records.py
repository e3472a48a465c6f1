"""What a stored record holds: the kinds of rows a spool keeps, defined once.

The SQLite spool of the HTTP intake and of MQTT's buffer mode stores every row with its
:class:`RecordKind`, and the Kafka spool (``--spool kafka:TOPIC``) uses the same words, so that
a record is read the same way wherever it was kept. Before kinds existed the SQLite spool told
them apart by ``path`` alone; :func:`kind_of_path` is that old reading, used once to fill the
column of older files (and for writers that do not say, such as the MQTT bridge).

**The Kafka spool's record format, version 1** (:data:`SPOOL_FORMAT`):

* key — the integration key, UTF-8 (so one key's records share a partition: one consumer
  keeps their order and their pace);
* value — the stored event text, UTF-8 (what a SQLite row's ``event`` column holds; empty for a
  heartbeat);
* headers — ``ilagent-spool: 1`` (the format version), ``ilagent-kind: <RecordKind value>``,
  ``ilagent-path: <path below ilert's API>``.

:func:`read_spool_record` gives back the :class:`StoredRecord` (what a SQLite row holds, read
by :func:`ilagent.spool.rows.read_row` like one), or :class:`Unreadable` for a record without
the version header or of a newer version: a dead letter, never retried for ever. A later
version adds headers or raises the number; a reader refuses what it cannot know.

Pure data, no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass


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


SPOOL_FORMAT = 1  # the version of the Kafka spool's record format this code writes and reads
VERSION_HEADER = "ilagent-spool"
KIND_HEADER = "ilagent-kind"
PATH_HEADER = "ilagent-path"
SPOOL_FORMAT_REASON = "spool_format"  # the dead-letter reason of a record that does not read
Headers = Sequence[tuple[str, str | bytes | None]]


@dataclass(frozen=True)
class StoredRecord:
    """What a spool keeps of one event: the fields of a SQLite row, wherever it was kept."""

    kind: str  # a RecordKind value, or one this code does not know (the reader decides)
    integration_key: str
    path: str
    event: str  # "" for a heartbeat


@dataclass(frozen=True)
class Unreadable:
    """A Kafka spool record that cannot be read as a :class:`StoredRecord`: a dead letter."""

    reason: str
    detail: str


def spool_record(kind: RecordKind, *, integration_key: str, path: str,
                 event: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """The key, value and headers of a Kafka spool record (format :data:`SPOOL_FORMAT`)."""
    return (integration_key.encode(), event.encode("utf-8", "surrogatepass"),
            [(VERSION_HEADER, str(SPOOL_FORMAT).encode()), (KIND_HEADER, kind.value.encode()),
             (PATH_HEADER, path.encode())])


def read_spool_record(key: bytes | None, value: bytes | None,
                      headers: Headers | None) -> StoredRecord | Unreadable:
    """A consumed Kafka spool record as a :class:`StoredRecord`, or why it cannot be read."""
    found = {name: raw.encode() if isinstance(raw, str) else raw or b""
             for name, raw in headers or ()}
    version = found.get(VERSION_HEADER)
    if version is None:
        return Unreadable(SPOOL_FORMAT_REASON, f"no {VERSION_HEADER} header: not a record "
                                               "an ilagent intake wrote to its spool")
    try:
        number = int(version)
    except ValueError:
        number = 0
    if number > SPOOL_FORMAT:
        return Unreadable(SPOOL_FORMAT_REASON, f"{VERSION_HEADER} {version.decode(errors='replace')}: "
                                               f"a newer format than this ilagent reads "
                                               f"({SPOOL_FORMAT}); consume it with a newer one")
    if number < 1 or KIND_HEADER not in found:
        return Unreadable(SPOOL_FORMAT_REASON, f"{VERSION_HEADER} "
                                               f"{version.decode(errors='replace')!r} without "
                                               f"a valid version or an {KIND_HEADER} header")
    try:
        return StoredRecord(kind=found[KIND_HEADER].decode(),
                            integration_key=(key or b"").decode(),
                            path=found.get(PATH_HEADER, b"").decode(),
                            event=(value or b"").decode("utf-8", "surrogatepass"))
    except UnicodeDecodeError as exc:
        return Unreadable(SPOOL_FORMAT_REASON, f"not UTF-8: {exc}")
