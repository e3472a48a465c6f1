"""The queue worker: feeds the durable queue to the delivery engine and settles every row.

Rows are loaded in id order, a page at a time, into a bounded window (capped per integration
key and per lane so that one busy or failing key cannot fill it); each becomes a delivery job
on the lane of its alert, so events of one alert reach ilert in the order they were accepted.
A row leaves the queue only when ilert took it (deleted) or it was given up (moved to
``dead_letters`` with the reason); anything else stays, so a restart resumes where it stopped.

A row whose persisted ``next_attempt_at`` lies ahead (it failed before a restart) is held
back until then, and the later rows of its lane with it. What a row becomes is decided by its
``kind`` alone (:mod:`ilagent.spool.rows`; MQTT rows are mapped with the converter handed to
:meth:`SpoolWorker.start`). A row retried from outside (``ilagent queue retry``) comes back
under its old id, below the cursor: the change rewinds the cursor, and a read on its way is made
again rather than carry the cursor back past that row (stranding it until a restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Hashable
from dataclasses import replace
from typing import Any

from ilagent.delivery.engine import Deliverer, Job, Verdict
from ilagent.delivery.job import Position
from ilagent.drills.marks import DrillInbox, hand_over_row
from ilagent.ilert import Result
from ilagent.logs import EACH
from ilagent.metrics import Metrics
from ilagent.records import RecordKind, mqtt_topic
from ilagent.spool.db import QueuedEvent, QueueStats
from ilagent.spool.legacy import Convert
from ilagent.spool.pending import PendingWrites
from ilagent.spool.rows import CORRUPT, Ending, read_row
from ilagent.spool.store import QueueStore
from ilagent.spool.window import DEFAULT_SIZE, Window

logger = logging.getLogger(__name__)

SOURCE = "http"
DEFAULT_WINDOW = DEFAULT_SIZE
PAGE = 500  # rows per read
DEFAULT_REFRESH_INTERVAL = 1.0
ERROR_EXCERPT = 300


class SpoolWorker:
    """Delivers the queue through a Deliverer; the JobOwner of every queued event."""

    def __init__(
        self,
        *,
        store: QueueStore,
        deliverer: Deliverer,
        metrics: Metrics,
        window: int = DEFAULT_WINDOW,
        refresh_interval: float = DEFAULT_REFRESH_INTERVAL,
        max_retries: int | None = None,
        max_event_age: float = 0.0,
    ) -> None:
        self._store = store
        self._max_event_age = max_event_age  # an ALERT accepted longer ago is not sent
        self._max_retries = max_retries  # None: the engine's policy; 0 = unlimited
        self._deliverer = deliverer
        self._metrics = metrics
        self._window = Window(window)
        self._refresh_interval = refresh_interval
        self._loaded: dict[int, Job] = {}  # rows held or submitted, and not yet settled
        self._held: dict[Hashable, deque[Job]] = {}
        self._cursor = 0  # the highest id read forward; newer rows always have higher ids
        self._due: set[str] = set()  # keys behind that have room to catch up now
        self._stale: set[str] = set()  # keys behind with newer rows passed over
        # rows settled while a read was on its way: that read may still hold them
        self._settled_meanwhile: set[int] | None = None
        self._withdrawn: set[int] = set()  # loaded rows purged from outside: never send them
        self._generation = 0  # outside changes (``ilagent queue``) seen so far
        self._notified = 1  # bumped on every new row, so a short page cannot hide one
        self._read = 0
        self._rewinds = 0  # bumped when the cursor goes back: a read on its way is stale
        self._convert: Convert | None = None  # maps MQTT rows; None without MQTT
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._writes = PendingWrites()  # writes nobody awaits: deletes, retry states
        self.drills: DrillInbox | None = None  # fire drills take the intake's drill rows
        self._loading = True
        self.stats = QueueStats(0, None, 0)

    @property
    def loaded(self) -> int:
        """Rows in memory (held back or in the engine)."""
        return len(self._loaded)

    def start(self, *, convert_mqtt: Convert | None = None) -> None:
        """Start loading and the periodic metrics refresh; ``convert_mqtt`` maps MQTT rows with
        this daemon's MQTT options (None: it runs no MQTT)."""
        self._convert = convert_mqtt
        loop = asyncio.get_running_loop()
        self._wake.set()  # the rows left by the last run
        self._tasks = [loop.create_task(self._load_loop()), loop.create_task(self._refresh())]
        for task in self._tasks:
            task.add_done_callback(_report_crash)

    def notify(self) -> None:
        """A row was added to the queue."""
        self._notified += 1
        self._wake.set()

    def stop_loading(self) -> None:
        """Load no more rows (shutdown step one); the engine finishes what it has."""
        self._loading = False
        self._wake.set()

    async def close(self) -> None:
        """Stop the tasks and wait for the writes already asked for."""
        self.stop_loading()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._writes.wait()

    def readiness(self) -> dict[str, Any] | None:
        """None while the queue takes writes, else why not (for ``/ready``)."""
        if self._store.writable:
            return None
        return {"error": self._store.write_error, "depth": self.stats.depth,
                "oldest_age_seconds": self._oldest_age()}

    # ---- loading -----------------------------------------------------------------------------

    async def _load_loop(self) -> None:
        while self._loading:
            timeout = self._next_due() - time.time() if self._held else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            self._release_due()
            try:
                await self._catch_up()
                await self._fill()
            except sqlite3.Error as exc:
                logger.error("could not read the queue: %s", exc)
                await asyncio.sleep(self._refresh_interval)
                self._wake.set()

    async def _fill(self) -> None:
        """Read new rows in id order; rows of a key that is behind or full are passed over."""
        while self._loading and self._read != self._notified:
            if self._window.full:
                return
            seen, rewinds = self._notified, self._rewinds
            rows, settled = await self._page(after=self._cursor)
            if rewinds != self._rewinds:
                continue  # the cursor went back meanwhile: read again from there
            if len(rows) < PAGE:
                self._read = seen
            for row in rows:
                if self._window.full:
                    self._read = 0  # rows are left on this page
                    return
                self._cursor = row.id
                if row.id in self._window or row.id in settled:
                    continue
                if row.integration_key in self._window.behind:
                    self._stale.add(row.integration_key)
                    continue
                job = self._job(row)
                if job is None:
                    continue
                if self._window.fits(row.integration_key, job.lane):
                    self._admit(job)
                else:
                    self._window.pass_over(row.integration_key, row.id)

    async def _catch_up(self) -> None:
        """Load the passed-over rows of keys with room again, in id order, up to the cursor."""
        while self._due and self._loading:
            key = self._due.pop()
            start = self._window.behind.get(key)
            if start is None:
                continue
            first_skipped: int | None = None
            blocked: set[Hashable] = set()  # lanes full in this pass: their later rows wait too
            after, stopped = start - 1, False
            while not stopped:
                rows, settled = await self._page(after=after, key=key, upto=self._cursor)
                for row in rows:
                    after = row.id
                    if row.id in self._window or row.id in settled:
                        continue
                    job = self._job(row)
                    if job is None:
                        continue
                    if job.lane in blocked or not self._window.fits(key, job.lane):
                        first_skipped = first_skipped or row.id
                        if job.lane is None or not self._window.fits(key, None):
                            stopped = True  # the key or the window is full: stop here
                            break
                        blocked.add(job.lane)
                        continue
                    self._admit(job)
                if len(rows) < PAGE:
                    break
            if first_skipped is None:
                del self._window.behind[key]
            else:
                self._window.behind[key] = first_skipped

    async def _page(self, *, after: int, key: str | None = None, upto: int | None = None
                    ) -> tuple[list[QueuedEvent], set[int]]:
        """A page of rows, and the rows settled while it was read (it may still hold them)."""
        self._settled_meanwhile = set()
        try:
            rows = await self._store.page(after=after, limit=PAGE, key=key, upto=upto)
            return rows, self._settled_meanwhile
        finally:
            self._settled_meanwhile = None

    def _job(self, row: QueuedEvent) -> Job | None:
        """The delivery job of a row; None when the row ends here instead (dead-lettered, or
        an MQTT message its mapping now filters)."""
        if row.kind == RecordKind.DRILL:  # a fire drill's: the drills follow it from here
            hand_over_row(self.drills, self._metrics, row.path, row.event)
            self._writes.keep(self._store.delete(row.id))
            return None
        try:
            what = read_row(row, convert=self._convert)
        except Exception:  # a bug in a mapping ends its row, never the loading
            logger.exception("internal error while reading queue#%d", row.id, extra=EACH)
            what = Ending("internal_error", "see the daemon's log")
        if isinstance(what, Ending):
            self._end(row, what)
            return None
        age = max(0.0, time.time() - row.received_at)
        expires = row.received_at + self._max_event_age
        return Job(owner=self, source=SOURCE, lane=what.lane, integration_key=what.integration_key,
                   path=what.path, body=what.body, policy=what.policy, origin=f"queue#{row.id}",
                   received=time.monotonic() - age, attempts=row.attempts, context=row,
                   max_retries=self._max_retries,
                   expires_at=expires if self._max_event_age and what.pages else None,
                   position=Position(
                       mqtt_topic(row.path) if row.kind == RecordKind.MQTT else "", None, row.id))

    def _end(self, row: QueuedEvent, ending: Ending) -> None:
        """A row that never becomes a job: filtered (deleted) or dead-lettered."""
        if ending.reason is None:
            logger.info("queue#%d: the MQTT message needs no delivery now (filtered, or a "
                        "heartbeat ping too old to matter); removed", row.id)
            self._metrics.filtered.labels(SOURCE, "").inc()
            self._writes.keep(self._store.delete(row.id))
            return
        what = "is not valid JSON" if ending.reason == CORRUPT else "cannot be delivered"
        logger.error("queue#%d %s; dead-lettering it (%s: %s)", row.id, what, ending.reason,
                     ending.detail, extra=EACH)
        self._metrics.dead_lettered.labels(SOURCE, ending.reason, "").inc()
        self._writes.keep(self._store.dead_letter(row.id, reason=ending.reason, status=None,
                                                  detail=ending.detail, attempts=row.attempts))

    def _admit(self, job: Job) -> None:
        row: QueuedEvent = job.context
        # the window counts the row's own key (what catch-up reads by), not the job's: an MQTT
        # row is stored without the key its mapping finds
        self._window.add(row.id, row.integration_key, job.lane)
        self._loaded[row.id] = job
        hold = job.lane if job.lane is not None else ("row", row.id)
        held = self._held.get(hold)
        if held is not None:
            held.append(job)
        elif row.next_attempt_at > time.time():
            self._held[hold] = deque([job])
        else:
            self._deliverer.submit(job)

    def _next_due(self) -> float:
        return min(float(held[0].context.next_attempt_at) for held in self._held.values())

    def _release_due(self) -> None:
        now = time.time()
        for hold in list(self._held):
            lane = self._held[hold]
            while lane and lane[0].context.next_attempt_at <= now:
                self._deliverer.submit(lane.popleft())
            if not lane:
                del self._held[hold]

    def _settle(self, row_id: int) -> None:
        self._loaded.pop(row_id, None)
        self._withdrawn.discard(row_id)
        if self._settled_meanwhile is not None:
            self._settled_meanwhile.add(row_id)
        key = self._window.remove(row_id)
        if key is not None:
            self._due.add(key)
            self._wake.set()
        if self._read != self._notified and len(self._window) <= self._window.size // 2:
            self._wake.set()

    # ---- JobOwner ----------------------------------------------------------------------------

    def cancelled(self, job: Job) -> bool:
        """True for a row deleted from outside (``ilagent queue purge``) since it was loaded."""
        return bool(self._withdrawn) and job.context.id in self._withdrawn

    async def finished(self, job: Job, verdict: Verdict, result: Result | None,
                       reason: str) -> None:
        """Delete a delivered row; move a rejected or exhausted one to the dead letters."""
        row: QueuedEvent = job.context
        if verdict is not Verdict.DEAD_LETTER:
            self._writes.keep(self._store.delete(row.id))
            self._settle(row.id)
            return
        try:
            await self._store.dead_letter(row.id, reason=reason, attempts=job.attempts,
                                          status=result.status if result else None,
                                          detail=result.detail if result else "")
        except sqlite3.Error as exc:  # it stays queued and is tried again after a restart
            logger.error("could not dead-letter %s: %s", job.origin, exc)
        self._settle(row.id)

    def abandoned(self, job: Job) -> None:
        """The engine stopped; keep the row, with the attempts it had so far."""
        row: QueuedEvent = job.context
        if job.attempts > row.attempts:
            self._writes.keep(self._store.record_attempt(
                row.id, attempts=job.attempts, next_attempt_at=row.next_attempt_at,
                last_error=row.last_error))
        self._settle(row.id)

    def attempted(self, job: Job, result: Result, delay: float) -> None:
        """A failed attempt to be retried in ``delay`` s: persist the row's retry state."""
        row: QueuedEvent = job.context
        error = f"{result.status_label} {result.detail}".strip()[:ERROR_EXCERPT]
        due = time.time() + delay
        job.context = replace(row, attempts=job.attempts, next_attempt_at=due, last_error=error)
        self._writes.keep(self._store.record_attempt(row.id, attempts=job.attempts,
                                                     next_attempt_at=due, last_error=error))

    # ---- metrics -----------------------------------------------------------------------------

    async def _refresh(self) -> None:
        """Every interval: prove the file takes writes, notice outside changes, update gauges."""
        while True:
            await self._store.probe()
            try:
                await self._outside_changes()
            except sqlite3.Error as exc:
                logger.warning("could not check the queue for outside changes: %s", exc)
            try:
                self.stats = await self._store.stats()
            except sqlite3.Error as exc:
                logger.warning("could not read queue statistics: %s", exc)
            if self.stats.depth > len(self._loaded):  # rows from outside: `ilagent queue retry`
                self.notify()
            if self._stale:  # keys behind whose newer rows were passed over
                self._due |= self._stale
                self._stale.clear()
                self._wake.set()
            self._metrics.queue_depth.set(self.stats.depth)
            self._metrics.queue_oldest_age.set(self._oldest_age())
            self._metrics.queue_dead_letters.set(self.stats.dead_letters)
            await asyncio.sleep(self._refresh_interval)

    async def _outside_changes(self) -> None:
        """After ``ilagent queue purge``/``retry``: forget loaded rows that are gone, say so."""
        generation, _acknowledged = await self._store.generations()
        if generation == self._generation:
            return
        loaded = list(self._loaded)
        gone = set(loaded) - await self._store.present(loaded) if loaded else set()
        if gone:
            logger.info("%d loaded row(s) were removed from outside; they will not be sent",
                        len(gone))
            self._withdrawn |= gone
            for hold, lane in list(self._held.items()):
                for job in [j for j in lane if j.context.id in gone]:
                    lane.remove(job)
                    self._settle(job.context.id)
                if not lane:
                    del self._held[hold]
            self._deliverer.wake()
        await self._store.acknowledge(generation)
        self._generation = generation
        self._cursor = 0  # retried rows come back under their old ids: read from the start
        self._read = 0
        self._rewinds += 1  # and a forward read on its way now must not move the cursor
        self._wake.set()

    def _oldest_age(self) -> float:
        oldest = self.stats.oldest_received_at
        return 0.0 if oldest is None else round(max(0.0, time.time() - oldest), 3)


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("queue worker task %s failed", task.get_name(), exc_info=task.exception())
