"""The spool's parts of ``ilagent daemon`` (wiring, beside :mod:`ilagent.daemon`): the SQLite
file or the Kafka topic, the sink the intake writes to, the reader of the Kafka bridge.

With ``--spool kafka:TOPIC`` there is no spool file: the intake writes through the
:class:`~ilagent.kafka.spool_producer.SpoolProducer`, and the Kafka bridge of the same daemon
(every daemon of ``--kafka_group_id``) reads TOPIC's records with :func:`spool_reader` — the
SQLite worker's own reading (:func:`ilagent.spool.rows.read_row`), so that a record is
delivered as its row would be.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ilagent.config import DaemonConfig
from ilagent.delivery.stored import Delivery, Ending
from ilagent.records import StoredRecord
from ilagent.spool.rows import read_record
from ilagent.spool.store import QueueStore
from ilagent.spool.worker import SpoolWorker
from ilagent.web.spooling import SpoolSink, SqliteSink

if TYPE_CHECKING:
    from ilagent.kafka.spool_producer import SpoolProducer


def kafka_spool(config: DaemonConfig) -> SpoolProducer | None:
    """The Kafka spool's producer; None without ``--spool kafka:TOPIC``."""
    if config.kafka is None or not config.kafka.spool_topic:
        return None
    from ilagent.kafka.spool_producer import SpoolProducer  # librdkafka only when Kafka is used

    return SpoolProducer(settings=config.kafka, timeout=config.spool_produce_timeout)


def spool_reader(record: StoredRecord) -> Delivery | Ending:
    """What a Kafka spool record becomes (MQTT's buffer is not kept on Kafka yet: without a
    converter an ``mqtt`` record ends as the dead letter ``no_mqtt``)."""
    return read_record(record, convert=None)


def intake_sink(*, store: QueueStore | None, worker: SpoolWorker | None,
                producer: SpoolProducer | None) -> SpoolSink | None:
    """Where the intake keeps events: the Kafka spool, else the SQLite file; None: neither."""
    if producer is not None:
        return producer
    if store is not None and worker is not None:
        return SqliteSink(store=store, worker=worker)
    return None
