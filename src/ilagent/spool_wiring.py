"""The spool's parts of ``ilagent daemon`` (wiring, beside :mod:`ilagent.daemon`): the SQLite
file or the Kafka topic, the sink the intake writes to, the reader of the Kafka bridge.

With ``--spool kafka:TOPIC`` there is no spool file: the intake (and MQTT's buffer) writes
through the :class:`~ilagent.kafka.spool_producer.SpoolProducer`, and the Kafka bridge of the same daemon
(every daemon of ``--kafka_group_id``) reads TOPIC's records with :func:`spool_reader` — the
SQLite worker's own reading (:func:`ilagent.spool.rows.read_row`), so that a record is
delivered as its row would be.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ilagent.config import DaemonConfig
from ilagent.delivery.stored import Delivery, Ending
from ilagent.metrics import Metrics
from ilagent.records import StoredRecord
from ilagent.spool.legacy import Convert
from ilagent.spool.rows import read_record
from ilagent.spool.store import QueueStore
from ilagent.spool.worker import SpoolWorker
from ilagent.web.spooling import SpoolSink, SqliteSink

if TYPE_CHECKING:
    from ilagent.kafka.spool_producer import SpoolProducer


def kafka_spool(config: DaemonConfig, *, metrics: Metrics | None = None) -> SpoolProducer | None:
    """The Kafka spool's producer; None without ``--spool kafka:TOPIC``."""
    if config.kafka is None or not config.kafka.spool_topic:
        return None
    from ilagent.kafka.spool_producer import SpoolProducer  # librdkafka only when Kafka is used

    return SpoolProducer(settings=config.kafka, timeout=config.spool_produce_timeout,
                         metrics=metrics)


def spool_reader(convert: Convert | None) -> Callable[[StoredRecord], Delivery | Ending]:
    """How the Kafka bridge reads a spool record: as the SQLite worker reads its row, with
    the same MQTT converter (the MQTT bridge's, with the daemon's MQTT options; None: no MQTT
    here, and an ``mqtt`` record ends as the dead letter ``no_mqtt``)."""

    def read(record: StoredRecord) -> Delivery | Ending:
        return read_record(record, convert=convert)

    return read


def spool_part(config: DaemonConfig) -> str:
    """The readiness part of the spool, whichever it is: ``intake`` when the HTTP intake writes
    to it, else ``spool`` (MQTT's buffer alone)."""
    return "intake" if config.http is not None and config.http.intake else "spool"


def intake_sink(*, store: QueueStore | None, worker: SpoolWorker | None,
                producer: SpoolProducer | None) -> SpoolSink | None:
    """Where the intake keeps events: the Kafka spool, else the SQLite file; None: neither."""
    if producer is not None:
        return producer
    if store is not None and worker is not None:
        return SqliteSink(store=store, worker=worker)
    return None
