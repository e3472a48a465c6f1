"""The daemon's face of the queue: calls return futures, one writer thread group-commits them.

Every call becomes an operation in a list; the writer thread runs all operations waiting at
that moment in one transaction, so many concurrent requests share one fsync. Reads run after
that commit, so they never see a write that might still roll back. A failing write fails
alone: the batch is rolled back and its writes are run again one by one.

The store keeps the bytes its rows hold for the cap (:mod:`ilagent.spool.space`): counted from
the file at open, moved by every committed transaction, counted again after outside changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from ilagent.records import RecordKind, kind_of_path
from ilagent.spool.db import BUSY_TIMEOUT, QueueDB, QueuedEvent, QueueStats, Row
from ilagent.spool.legacy import Convert, Takeover
from ilagent.spool.space import SpoolSpace, row_bytes, spool_limit

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(eq=False)
class _Op:
    fn: Callable[[QueueDB], Any] | None  # None: insert ``row``, together with the others
    write: bool
    future: asyncio.Future[Any]
    row: Row | None = None
    reserved: int = 0  # bytes of the cap held for it until it ended
    recount: bool = False  # a read of the bytes the file holds: the running total's new value


class QueueStore:
    """The daemon's queue: calls return futures, writes are group-committed by one thread.

    A caller may await a future or leave it (a delete after delivery need not hold up its
    lane: the deletes commit in the order they were asked for, so a crash can only leave
    an earlier event behind together with the later ones of its lane).

    Writes submitted while a transaction runs wait and go together into the next one; reads
    run after that commit, so they never see a write that might still roll back.
    """

    def __init__(self, path: str, *, busy_timeout: float = BUSY_TIMEOUT,
                 max_bytes: int | None = None) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._max_bytes = max_bytes  # --spool_max_bytes; None: the default rule
        self.space = SpoolSpace()
        self._db: QueueDB | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ilagent-queue")
        self._pending: list[_Op] = []
        self._flusher: asyncio.Task[None] | None = None
        self.transactions = 0  # write transactions run (group commit makes this << writes)
        self.write_error: str | None = None  # the last write failure; None once a write works

    async def open(self) -> Takeover:
        """Open (and if need be create) the file and its tables, and take over what ilagent
        0.9 left in it; raises ``sqlite3.Error``."""
        loop = asyncio.get_running_loop()
        self._db = await loop.run_in_executor(
            self._executor, lambda: QueueDB(self.path, busy_timeout=self._busy_timeout)
        )
        db = self._db
        taken = await loop.run_in_executor(
            self._executor, lambda: db.take_over_legacy(now=time.time()))
        stored, free = await loop.run_in_executor(self._executor, self._measure)
        self.space.stored = stored
        self.space.limit = spool_limit(self._max_bytes, stored=stored, free=free)
        logger.info("spool cap %d bytes (%s), %d stored", self.space.limit,
                    "--spool_max_bytes" if self._max_bytes else
                    "1 GiB, or half the free space when less", stored)
        if self._max_bytes is not None and self._max_bytes > stored + free:
            logger.warning("--spool_max_bytes %d is more than the spool and the free space of "
                           "its disk (%d bytes): the disk fills up before the cap stops the "
                           "intake", self._max_bytes, stored + free)
        return taken

    def _measure(self) -> tuple[int, int]:
        """On the writer thread: the bytes the rows hold, and the free bytes of the disk."""
        assert self._db is not None
        directory = os.path.dirname(os.path.abspath(self.path))
        return self._db.stored_bytes(), shutil.disk_usage(directory).free

    async def take_over_mqtt(self, convert: Convert) -> Takeover:
        """Map and queue the MQTT messages ilagent 0.9 had buffered (see ``legacy``)."""
        db = self._db
        assert db is not None
        taken = await asyncio.get_running_loop().run_in_executor(
            self._executor, lambda: db.take_over_legacy_mqtt(convert, now=time.time()))
        await self._recount()
        return taken

    async def close(self) -> None:
        """Finish every submitted operation, then close the file.

        A file that takes no writes (a full disk) ends in one ERROR saying what that means;
        every write fails at once there, so closing never waits on it."""
        while self._flusher is not None and not self._flusher.done():
            await self._flusher
        if self.write_error is not None:
            logger.error("the queue file %s takes no writes at shutdown (%s): nothing new was "
                         "stored since it failed, and rows delivered since stay queued and are "
                         "sent again after a restart", self.path, self.write_error)
        if self._db is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)

    @property
    def writable(self) -> bool:
        """False while the last write failed."""
        return self.write_error is None

    def enqueue(self, *, integration_key: str, path: str, event: str,
                kind: RecordKind | None = None, reserved: bool = False) -> asyncio.Future[int]:
        """Store a row durably (committed and synced); resolves to its queue id.

        ``kind`` says what it holds; None reads it from ``path`` as files without kinds did
        (:func:`~ilagent.records.kind_of_path`), for a writer that does not say it yet.
        ``reserved``: the caller took the row's room from :attr:`space` (else it is added
        whatever the cap)."""
        row = (integration_key, path, event, time.time(), kind or kind_of_path(path))
        return self._submit(None, write=True, row=row,
                            reserved=self._room(row_bytes(integration_key, path, event),
                                                reserved))

    def delete(self, row_id: int) -> asyncio.Future[bool]:
        """Remove a delivered event."""
        return self._submit(lambda db: db.delete(row_id), write=True)

    def record_attempt(
        self, row_id: int, *, attempts: int, next_attempt_at: float, last_error: str | None
    ) -> asyncio.Future[None]:
        """Persist the retry state of an event."""
        return self._submit(
            lambda db: db.record_attempt(
                row_id, attempts=attempts, next_attempt_at=next_attempt_at, last_error=last_error
            ),
            write=True,
        )

    def dead_letter(
        self, row_id: int, *, reason: str, status: int | None, detail: str, attempts: int
    ) -> asyncio.Future[bool]:
        """Move an event to the dead letters."""
        now = time.time()
        return self._submit(
            lambda db: db.dead_letter(
                row_id, reason=reason, status=status, detail=detail, attempts=attempts, now=now
            ),
            write=True,
        )

    def add_dead_letter(
        self, *, integration_key: str, path: str, event: str, reason: str, detail: str,
        kind: RecordKind | None = None, reserved: bool = False,
    ) -> asyncio.Future[int]:
        """Keep a message refused before it was queued among the dead letters (``kind`` and
        ``reserved`` as for :meth:`enqueue`)."""
        now = time.time()
        return self._submit(
            lambda db: db.insert_dead_letter(
                integration_key=integration_key, path=path, event=event, reason=reason,
                detail=detail, now=now, kind=kind),
            write=True, reserved=self._room(row_bytes(integration_key, path, event), reserved),
        )

    def _room(self, nbytes: int, reserved: bool) -> int:
        if not reserved:
            self.space.reserve(nbytes)
        return nbytes

    async def probe(self) -> None:
        """A write that sets :attr:`writable`; its error is kept, not raised."""
        with contextlib.suppress(sqlite3.Error):
            now = time.time()
            await self._submit(lambda db: db.probe(now), write=True)

    def page(
        self, *, after: int, limit: int, key: str | None = None, upto: int | None = None
    ) -> asyncio.Future[list[QueuedEvent]]:
        """Queued events with an id above ``after``, oldest first (see :meth:`QueueDB.page`)."""
        return self._submit(
            lambda db: db.page(after=after, limit=limit, key=key, upto=upto), write=False
        )

    def generations(self) -> asyncio.Future[tuple[int, int]]:
        """Outside changes made so far, and the last one this daemon acknowledged."""
        return self._submit(lambda db: db.generations(), write=False)

    def acknowledge(self, generation: int) -> asyncio.Future[None]:
        """Tell ``ilagent queue`` that the outside changes up to ``generation`` are seen, and
        count the bytes the file holds again (a purge freed room, a retry took some)."""
        done = self._submit(lambda db: db.acknowledge(generation), write=True)
        self._recount()
        return done

    def _recount(self) -> asyncio.Future[int]:
        """Count the bytes of the file anew (read after the next commit); a failure is
        logged, and the running total stays as it was."""
        future = self._submit(lambda db: db.stored_bytes(), write=False, recount=True)
        future.add_done_callback(_log_recount)
        return future

    def present(self, ids: list[int]) -> asyncio.Future[set[int]]:
        """Which of ``ids`` are still queued."""
        return self._submit(lambda db: db.present(ids), write=False)

    def stats(self) -> asyncio.Future[QueueStats]:
        """Depth, oldest acceptance time and number of dead letters."""
        return self._submit(lambda db: db.stats(), write=False)

    def _submit(self, fn: Callable[[QueueDB], T] | None, *, write: bool, row: Row | None = None,
                reserved: int = 0, recount: bool = False) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append(_Op(fn, write, future, row, reserved, recount))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return future

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending, []
            outcomes, added = await loop.run_in_executor(self._executor, self._run, batch)
            self.space.settle(released=sum(op.reserved for op in batch), stored=added)
            for op, (ok, value) in zip(batch, outcomes, strict=True):
                if op.recount and ok:  # read after this batch's commit: it includes it
                    self.space.recounted(value)
                if op.future.done():  # the caller gave up waiting; the work is done anyway
                    continue
                if ok:
                    op.future.set_result(value)
                else:
                    op.future.set_exception(value)

    def _run(self, batch: list[_Op]) -> tuple[list[tuple[bool, Any]], int]:
        """Runs on the writer thread: all writes in one transaction, then the reads; the
        outcomes, and the bytes the committed writes added to the file."""
        db = self._db
        if db is None:
            error = sqlite3.ProgrammingError("the queue is not open")
            return [(False, error)] * len(batch), 0
        outcomes: dict[int, tuple[bool, Any]] = {}
        added = 0
        writes = [(i, op) for i, op in enumerate(batch) if op.write]
        if writes:
            try:
                outcomes.update(self._transaction(db, writes))
                added += db.bytes_added
            except _BeginFailed as failed:  # locked or unwritable: every write fails alike
                outcomes.update({i: (False, failed.error) for i, _ in writes})
            except Exception:  # one write failed: run each alone so that only it fails
                for one in writes:
                    try:
                        outcomes.update(self._transaction(db, [one]))
                        added += db.bytes_added
                    except _BeginFailed as failed:
                        outcomes[one[0]] = (False, failed.error)
                    except Exception as exc:
                        self._failed(exc)
                        outcomes[one[0]] = (False, exc)
        for i, op in enumerate(batch):
            if not op.write:
                outcomes[i] = _call(op.fn, db)
        return [outcomes[i] for i in range(len(batch))], added

    def _transaction(
        self, db: QueueDB, writes: list[tuple[int, _Op]]
    ) -> dict[int, tuple[bool, Any]]:
        try:
            db.begin()
        except sqlite3.Error as exc:
            self._failed(exc)
            raise _BeginFailed(exc) from exc
        try:
            inserts = [(i, op.row) for i, op in writes if op.row is not None]
            ids = db.insert_many([row for _, row in inserts]) if inserts else []
            results = {i: (True, row_id) for (i, _), row_id in zip(inserts, ids, strict=True)}
            for i, op in writes:
                if op.fn is not None:
                    results[i] = (True, op.fn(db))
            db.commit()
        except BaseException:
            db.rollback()
            raise
        self.transactions += 1
        self.write_error = None
        return results

    def _failed(self, exc: Exception) -> None:
        self.write_error = f"{type(exc).__name__}: {exc}"
        logger.error("queue write failed: %s", self.write_error)


class _BeginFailed(Exception):
    def __init__(self, error: sqlite3.Error) -> None:
        super().__init__(str(error))
        self.error = error


def _log_recount(future: asyncio.Future[int]) -> None:
    if not future.cancelled() and (error := future.exception()) is not None:
        logger.warning("could not count the bytes of the queue file: %s", error)


def _call(fn: Callable[[QueueDB], Any] | None, db: QueueDB) -> tuple[bool, Any]:
    assert fn is not None, "reads always carry their function"
    try:
        return True, fn(db)
    except Exception as exc:  # handed to the caller's future
        return False, exc
