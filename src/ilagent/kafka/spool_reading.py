"""The Kafka spool's records in the bridge (``--spool kafka:TOPIC``): each becomes the delivery
job its SQLite row would, on the same lane (:func:`ilagent.spool.rows.read_row`, handed over by
the daemon as a :data:`SpoolReader`), or ends as what its row would end as.

A record that does not read as the spool's format (:func:`ilagent.records.read_spool_record`)
is the dead letter ``spool_format``; a fire drill's is handed to the drills; ``--max_event_age``
counts from the record's timestamp (when the intake accepted the event).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message

from ilagent.delivery.job import Job, JobOwner, Position
from ilagent.delivery.stored import Delivery, Ending
from ilagent.kafka.partitions import origin
from ilagent.records import RecordKind, StoredRecord, Unreadable, read_spool_record

SOURCE = "kafka"
SpoolReader = Callable[[StoredRecord], Delivery | Ending]
DrillInbox = Callable[[str, str], None]  # a fire drill's record: its path and event text


def spool_job(message: Message, read: SpoolReader, *, owner: JobOwner, context: Any,
              max_event_age: float, drill: DrillInbox) -> Job | Ending:
    """The job of a spool record, or how it ends (``reason`` None: finished, nothing sent)."""
    headers = message.headers()
    record = read_spool_record(message.key(), message.value(),
                               list(headers.items()) if isinstance(headers, dict) else headers)
    if isinstance(record, Unreadable):
        return Ending(record.reason, record.detail)
    if record.kind == RecordKind.DRILL:  # the drills follow it from here, never sent as is
        drill(record.path, record.event)
        return Ending(None, "a fire drill's event")
    what = read(record)
    if isinstance(what, Ending):
        return what
    kind, millis = message.timestamp()
    expires = (millis / 1000 + max_event_age if max_event_age and what.pages
               and kind != TIMESTAMP_NOT_AVAILABLE and millis > 0 else None)
    return Job(owner=owner, source=SOURCE, lane=what.lane, integration_key=what.integration_key,
               path=what.path, body=what.body, policy=what.policy, origin=origin(message),
               context=context, expires_at=expires,
               position=Position(str(message.topic()), message.partition(), message.offset()))
