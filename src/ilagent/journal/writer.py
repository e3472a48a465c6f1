"""The daemon's journal: told by the delivery engine, written in batches off the event loop.

:class:`Journal` is the engine's :class:`~ilagent.delivery.job.Recorder`. On the event loop it
only appends references — an answer to the job's :class:`~ilagent.journal.entries.Trail`, an
ended event to a list — and a background task (:meth:`Journal.run`) writes that list every
:data:`FLUSH_INTERVAL` seconds, or as soon as it holds :data:`BATCH` events, in one transaction
through ``asyncio.to_thread``, where the rows are made (body read, key masked). Heartbeat pings
and policy updates are not events and are not journaled.

The journal never holds delivery up: a write that fails drops its batch, counted in
``ilagent_journal_events_total{result="dropped"}`` and logged once, then once per
:data:`REPORT_EVERY` seconds with the count (and once more when writes work again); while
writes fail or lag, at most :data:`MAX_BUFFERED` events wait and newer ones are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from typing import Any

from ilagent.delivery.job import Job, Verdict
from ilagent.errors import ResourceError
from ilagent.ilert import Result
from ilagent.journal.db import JournalDB
from ilagent.journal.entries import (
    DEAD_LETTERED,
    DELIVERED,
    STALE,
    STALE_REASON,
    Ended,
    as_json,
    noted,
    to_row,
)
from ilagent.metrics import Metrics

logger = logging.getLogger(__name__)

FLUSH_INTERVAL = 1.0  # seconds between writes while events end
BATCH = 2000  # events that make a write start at once
MAX_BUFFERED = 20_000  # events waiting for a write; beyond this they are dropped
REPORT_EVERY = 60.0  # seconds between summarised lines about failing writes
DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # --journal_max_mb's default (64 MiB)


class Journal:
    """The journal of one daemon: record on the loop, write in a thread, read for ``/trace``."""

    def __init__(self, path: str, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 metrics: Metrics | None = None, flush_interval: float = FLUSH_INTERVAL) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._metrics = metrics or Metrics()
        self._written = self._metrics.journal.labels("written")
        self._dropped = self._metrics.journal.labels("dropped")
        self._interval = flush_interval
        self._db: JournalDB | None = None
        self._pending: list[Ended] = []
        self._full = asyncio.Event()
        self._writing = asyncio.Lock()  # batches are written in the order they ended
        self._failing_since: float | None = None
        self._failed, self._reported = 0, 0.0  # dropped since the last line, and when

    # ---- on the event loop: the engine's Recorder ----------------------------------------

    def answered(self, job: Job, result: Result, seconds: float) -> None:
        """Keep ilert's answer to an attempt of ``job`` on the job."""
        if job.body is None or job.policy is not None:
            return
        job.notes = noted(job.notes, (
            time.time(), result.status, result.outcome.value, result.reason, seconds,
            "" if 200 <= (result.status or 0) < 300 else result.detail))

    def ended(self, job: Job, verdict: Verdict, result: Result | None, reason: str) -> None:
        """Queue the event for the next write."""
        if job.body is None or job.policy is not None or verdict is Verdict.SUPERSEDED:
            return
        pending = self._pending
        if len(pending) >= MAX_BUFFERED:
            self._drop(1, "its buffer is full (writes lag behind)")
            return
        now = time.time()
        shown = (DELIVERED if verdict is Verdict.DELIVERED
                 else STALE if reason == STALE_REASON else DEAD_LETTERED)
        pending.append((now, now - (time.monotonic() - job.received), job.source,
                        job.position, job.route, job.integration_key, job.body, job.notes,
                        shown, reason))
        if len(pending) >= BATCH:
            self._full.set()

    # ---- the file ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Open (or create) the file; one that cannot be is a ``ResourceError``."""
        try:
            self._db = await asyncio.to_thread(JournalDB, self.path, max_bytes=self.max_bytes)
        except (sqlite3.Error, OSError) as exc:
            raise ResourceError(f"cannot open the journal {self.path}: "
                                f"{getattr(exc, 'strerror', None) or exc} (--journal PATH "
                                "elsewhere, or --journal off)") from None
        logger.info("journal %s: each event sent or dead-lettered is kept (up to %d MiB)",
                    self.path, self.max_bytes // (1024 * 1024))

    async def run(self) -> None:
        """Write what ended, every interval or when a batch is full, until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self._interval)
            self._full.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write every event that ended so far (one transaction); a failure drops them."""
        async with self._writing:
            if not self._pending or self._db is None:  # not open yet: kept for the first write
                return
            batch, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self._write, self._db, batch)
            except (sqlite3.Error, OSError) as exc:
                self._drop(len(batch), f"its file refused the write: {exc}")
                return
            self._written.inc(len(batch))
            if self._failing_since is not None:
                logger.warning("journal %s: writes work again (%d events were not journaled)",
                               self.path, self._failed)
                self._failing_since, self._failed = None, 0

    @staticmethod
    def _write(db: JournalDB, batch: list[Ended]) -> None:
        db.write([to_row(ended) for ended in batch])

    def _drop(self, count: int, why: str) -> None:
        """Events not journaled: counted, and said once, then once per REPORT_EVERY s."""
        self._dropped.inc(count)
        now = time.monotonic()
        self._failed += count
        if self._failing_since is None:
            self._failing_since, self._reported = now, now
            logger.warning("journal %s: %d events not journaled, %s; delivery goes on",
                           self.path, count, why)
        elif now - self._reported >= REPORT_EVERY:
            self._reported = now
            logger.warning("journal %s: %d events not journaled since %.0f s, %s",
                           self.path, self._failed, now - self._failing_since, why)

    async def story(self, *, alert_key: str | None, since: float | None,
                    limit: int) -> list[dict[str, Any]]:
        """What ``/trace`` answers: rows as :func:`~ilagent.journal.entries.as_json` shows them,
        oldest first, including the events that ended since the last write."""
        await self.flush()
        db = self._db
        if db is None:
            return []
        rows = await asyncio.to_thread(db.story, alert_key=alert_key, since=since, limit=limit)
        return [as_json(row) for row in rows]

    async def close(self) -> None:
        """Write what is left and close the file."""
        await self.flush()
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.to_thread(db.close)
