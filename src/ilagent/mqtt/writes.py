"""Buffer mode's spool writes: retried while the daemon runs, reported together, bounded at
shutdown.

With ``--mqtt_buffer`` a message is acknowledged only once its spool write committed (to the
queue file) or was acknowledged by the brokers (``--spool kafka:TOPIC``, through a
:class:`RecordSink`). A write that fails (a full disk, a file that cannot grow, brokers that
do not answer within ``--spool_produce_timeout``) is retried while the daemon runs, since the
cause may clear; on Kafka a write that timed out may still be stored, so a retry can keep a
message twice (at-least-once, as for the intake). All failing writes share one log line per ``report_interval`` at most,
saying how many messages wait (the log's repeat filter folds those lines further, into one per
30 s): a full disk under a steady stream of messages must not write a line per attempt per
message. At shutdown the writes get what is left of the deadline; those still unfinished then
are cancelled, their messages stay unacknowledged and the broker sends them again after the
restart — one ERROR line says how many.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from ilagent.errors import SpoolUnavailable
from ilagent.records import RecordKind

logger = logging.getLogger(__name__)

RETRY_DELAY = 1.0
REPORT_INTERVAL = 1.0


class RecordSink(Protocol):
    """The Kafka spool, as buffer mode writes to it (the daemon's
    :class:`~ilagent.kafka.spool_producer.SpoolProducer`)."""

    async def put(self, kind: RecordKind, *, integration_key: str, path: str,
                  event: str) -> str:
        """Keep the record; return where once the brokers acknowledged it, else raise
        :class:`~ilagent.errors.SpoolUnavailable`."""


class QueueWrites:
    """The queue-file writes in progress, each acknowledging its message once it worked."""

    def __init__(self, *, retry_delay: float = RETRY_DELAY,
                 report_interval: float = REPORT_INTERVAL) -> None:
        self._retry_delay = retry_delay
        self._report_interval = report_interval
        self._tasks: set[asyncio.Task[None]] = set()
        self._failing = 0  # writes that failed at least once and have not worked yet
        self._last_error = ""
        self._reported_at = -math.inf

    def __len__(self) -> int:
        """Writes not finished yet."""
        return len(self._tasks)

    def start(self, write: Callable[[], Awaitable[None]], *, then: Callable[[], None]) -> None:
        """Run ``write`` until it works, then call ``then`` (acknowledge what it keeps)."""
        task = asyncio.get_running_loop().create_task(self._run(write, then))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float) -> int:
        """Let the writes finish for up to ``timeout`` s, then cancel the rest (their messages
        stay unacknowledged); returns how many were cancelled."""
        if not self._tasks:
            return 0
        _done, pending = await asyncio.wait(set(self._tasks), timeout=max(timeout, 0.0))
        if not pending:
            return 0
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        logger.error("shutdown: %d MQTT message(s) could not be queued (%s); they stay "
                     "unacknowledged and the broker sends them again", len(pending),
                     self._last_error or "the queue file did not answer in time")
        return len(pending)

    async def _run(self, write: Callable[[], Awaitable[None]], then: Callable[[], None]) -> None:
        failed = False
        try:
            while True:
                try:
                    await write()
                    break
                except (sqlite3.Error, SpoolUnavailable) as exc:
                    if not failed:
                        failed = True
                        self._failing += 1
                    self._report(exc)
                    await asyncio.sleep(self._retry_delay)
        finally:
            if failed:
                self._failing -= 1
        if failed and not self._failing:
            self._last_error = ""
            logger.warning("the spool takes writes again: the MQTT messages that waited "
                           "are queued and acknowledged")
        then()

    def _report(self, exc: sqlite3.Error | SpoolUnavailable) -> None:
        self._last_error = str(exc)
        now = time.monotonic()
        if now - self._reported_at < self._report_interval:
            return
        self._reported_at = now
        logger.error("cannot write to the spool (%s): %d MQTT message(s) wait to be "
                     "queued, unacknowledged; retrying every %g s", exc, len(self._tasks),
                     self._retry_delay)
