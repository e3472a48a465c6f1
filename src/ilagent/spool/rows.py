"""What a queued row becomes: a delivery, decided by its kind alone, or its end.

The worker reads every row through :func:`read_row`, never by its path
(:class:`~ilagent.records.RecordKind`):

* ``event`` — posted to its path, on its alert's lane;
* ``heartbeat`` — a ping of the key in ``integration_key``;
* ``policy`` — an escalation-policy level update (``PolicyUpdate.to_json``);
* ``drill`` — a fire drill's event (:mod:`ilagent.drills`): the worker hands it to the drills
  and deletes it; never sent as it is;
* ``mqtt`` — an MQTT message kept as received (topic in the path, payload as the body), read
  as if it arrived now with the daemon's current MQTT options (the converter the daemon hands
  over; the MQTT bridge's own reading): it becomes the event or policy update it maps to, is
  filtered (the row ends, deleted), or ends as a dead letter with the mapping's reason. Without
  MQTT in this daemon it ends as the dead letter ``no_mqtt``, saying where to retry it.

A kind this code does not know ends as ``unknown_kind``, JSON that does not read as ``corrupt``.
So ``ilagent queue retry`` of any dead letter gives a row that is delivered or ends again,
never one retried for ever. Pure: the worker does the writing.
"""

from __future__ import annotations

import json

import orjson

from ilagent.delivery.lanes import POLICY_KEY, event_lane, heartbeat_lane, policy_lane
from ilagent.delivery.stored import Delivery, Ending
from ilagent.mapping.policy import PolicyUpdate
from ilagent.records import POLICY_PATH, RecordKind, StoredRecord, mqtt_topic
from ilagent.spool.db import QueuedEvent
from ilagent.spool.legacy import Convert

NO_MQTT = ("an MQTT message kept as received, and this daemon runs no MQTT: retry it "
           "(ilagent queue retry ID) with a daemon that has the MQTT options")
CORRUPT = "corrupt"
__all__ = ["CORRUPT", "NO_MQTT", "Delivery", "Ending", "read_record", "read_row"]


def read_row(row: QueuedEvent, *, convert: Convert | None) -> Delivery | Ending:
    """What ``row`` becomes; ``convert`` maps MQTT messages (None: no MQTT here)."""
    try:
        kind = RecordKind(row.kind)
    except ValueError:
        return Ending("unknown_kind", f"a row of kind {row.kind!r}, which this ilagent does "
                                      "not know (written by a newer version?)")
    try:
        if kind is RecordKind.EVENT:
            return _event(row.integration_key, row.path, row.event)
        if kind is RecordKind.POLICY:
            return _update(PolicyUpdate.from_json(row.event))
        if kind is RecordKind.HEARTBEAT:
            return Delivery(heartbeat_lane(row.integration_key), row.integration_key)
        if kind is RecordKind.DRILL:  # the worker hands these to the drills: never sent as is
            return Ending(None, "a fire drill's event")
        return _mqtt(row, convert)
    except ValueError as exc:  # json.JSONDecodeError, a policy update that does not read
        return Ending(CORRUPT, str(exc))


def read_record(record: StoredRecord, *, convert: Convert | None) -> Delivery | Ending:
    """What a record of the Kafka spool becomes: read as the SQLite row it would have been."""
    return read_row(QueuedEvent(id=0, integration_key=record.integration_key, path=record.path,
                                event=record.event, received_at=0.0, kind=record.kind),
                    convert=convert)


def _mqtt(row: QueuedEvent, convert: Convert | None) -> Delivery | Ending:
    if convert is None:
        return Ending("no_mqtt", NO_MQTT)
    converted = convert(mqtt_topic(row.path), row.event.encode("utf-8", "surrogatepass"))
    if converted.reason is not None:
        return Ending(converted.reason, converted.detail)
    if converted.event is None:  # filtered now, or a heartbeat ping too old to matter
        return Ending(None)
    if converted.path == POLICY_PATH:
        return _update(PolicyUpdate.from_json(converted.event))
    return _event(converted.integration_key, converted.path, converted.event)


def _event(key: str, path: str, text: str) -> Delivery:
    try:  # orjson first: the rows our intake wrote are its output
        body = orjson.loads(text)
    except orjson.JSONDecodeError:  # what only the standard parser reads (a lone surrogate)
        body = json.loads(text)
    lane = event_lane(key, body) if isinstance(body, dict) else None
    pages = isinstance(body, dict) and body.get("eventType") == "ALERT"
    # sent as it was stored: serialised once, where it entered
    return Delivery(lane, key, path, text.encode(), pages=pages)


def _update(update: PolicyUpdate) -> Delivery:
    return Delivery(policy_lane(update), POLICY_KEY, policy=update)
