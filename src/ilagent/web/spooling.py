"""Where the intake puts an event before its ``202``: the :class:`SpoolSink` protocol.

The daemon hands the intake one sink: :class:`SqliteSink` (the spool file ``-f``, the default)
or the Kafka spool's producer (:class:`ilagent.kafka.spool_producer.SpoolProducer`, with
``--spool kafka:TOPIC``), so that ``web/`` never loads librdkafka. A sink returns only once the
event is durable — committed to the file, acknowledged by the brokers — and otherwise raises
:class:`~ilagent.errors.SpoolUnavailable` (:class:`~ilagent.errors.SpoolFull` for a full file).
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Protocol

from ilagent.errors import SpoolFull, SpoolUnavailable
from ilagent.logs import mask_key
from ilagent.records import RecordKind
from ilagent.spool.space import row_bytes
from ilagent.spool.store import QueueStore
from ilagent.spool.worker import SpoolWorker

logger = logging.getLogger(__name__)


class SpoolSink(Protocol):
    """Keeps an intake's event durably; what the intake answers 202 for."""

    async def put(self, kind: RecordKind, *, integration_key: str, path: str,
                  event: str) -> str:
        """Store the event; return its id in the spool (for the 202), or raise
        :class:`~ilagent.errors.SpoolUnavailable`."""


class SqliteSink:
    """The SQLite spool file: a row committed (its space reserved first), then the worker
    told."""

    def __init__(self, *, store: QueueStore, worker: SpoolWorker) -> None:
        self._store = store
        self._worker = worker

    async def put(self, kind: RecordKind, *, integration_key: str, path: str,
                  event: str) -> str:
        """Commit the row; :class:`SpoolFull` when the spool holds ``--spool_max_bytes``."""
        space = self._store.space
        if not space.take(row_bytes(integration_key, path, event)):
            raise SpoolFull(used=space.used, limit=space.limit or 0)
        try:
            row_id = await self._store.enqueue(integration_key=integration_key, path=path,
                                               event=event, reserved=True, kind=kind)
        except sqlite3.Error as exc:
            logger.error("could not queue an event for %s: %s", mask_key(integration_key), exc)
            raise SpoolUnavailable("the event could not be stored; nothing was queued, retry "
                                   "later") from None
        self._worker.notify()
        return str(row_id)
