"""The durable SQLite queue of the HTTP intake: tables, rows and their statements (synchronous).

Two tables of our own sit beside whatever else the file holds (ilagent 0.9's ``event_items``
rows are taken over once, see :mod:`ilagent.spool.legacy`): ``queue`` holds accepted rows until
ilert took them, ``dead_letters`` those judged undeliverable, with the reason. Every row says
what it holds in ``kind`` (:class:`~ilagent.records.RecordKind`: an event, a heartbeat ping, a
policy update, an MQTT message kept as received with its topic in ``path`` as ``mqtt:<topic>``);
the tables and their migration are :mod:`ilagent.spool.schema`'s. Ids come from
``AUTOINCREMENT``, so they grow with acceptance order and are never reused; a dead letter keeps
the id it had in the queue. The file runs in WAL mode with ``synchronous=FULL``: a committed
event survives a power cut.

:class:`QueueDB` serves the daemon's writer thread (:mod:`ilagent.spool.store`) and the
``ilagent queue`` command; all SQL uses bound parameters. A change made beside a running
daemon (purge, retry) bumps ``queue_meta.generation``; the daemon's worker sees it within a
second, drops rows that are gone from its memory and writes ``queue_meta.acknowledged``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ilagent.private_files import narrow, sqlite_files
from ilagent.records import RecordKind, kind_of_path
from ilagent.spool import legacy, schema
from ilagent.spool.checks import NotASpool
from ilagent.spool.space import ROW_BYTES_SQL, row_bytes

BUSY_TIMEOUT = 5.0
INSERT_CHUNK = 200  # rows per INSERT statement (5 bound values each)
QUEUE_COLUMNS = (
    "id, integration_key, path, event, received_at, attempts, next_attempt_at, last_error, kind"
)
DEAD_COLUMNS = (
    "id, integration_key, path, event, received_at, attempts, reason, status, detail, dead_at, "
    "kind"
)
Row = tuple[str, str, str, float, str]  # integration_key, path, event, received_at, kind


@dataclass(frozen=True)
class QueuedEvent:
    """A row of ``queue``: what waits for ilert (times are Unix seconds). ``kind`` says what it
    holds (a :class:`~ilagent.records.RecordKind` value, or one this code does not know)."""

    id: int
    integration_key: str
    path: str
    event: str
    received_at: float
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = None
    kind: str = RecordKind.EVENT


@dataclass(frozen=True)
class DeadLetter:
    """A row of ``dead_letters``: why an event was given up (``status`` None: no HTTP answer)."""

    id: int
    integration_key: str
    path: str
    event: str
    received_at: float
    attempts: int
    reason: str
    status: int | None
    detail: str
    dead_at: float
    kind: str = RecordKind.EVENT


@dataclass(frozen=True)
class QueueStats:
    """Queue depth, the acceptance time of its oldest event, and the dead letters kept."""

    depth: int
    oldest_received_at: float | None
    dead_letters: int


class QueueDB:
    """Synchronous access to the queue file over one connection; not thread-safe by itself."""

    def __init__(
        self,
        path: str,
        *,
        create: bool = True,
        read_only: bool = False,
        busy_timeout: float = BUSY_TIMEOUT,
    ) -> None:
        if create:  # the daemon's: only its owner may read it (it holds integration keys)
            narrow(sqlite_files(path), what="the spool file")
            self._conn = sqlite3.connect(
                path, isolation_level=None, timeout=busy_timeout, check_same_thread=False
            )
        else:  # the CLI must not create an empty file where the user mistyped a name
            self._conn = sqlite3.connect(
                f"file:{path}?mode={'ro' if read_only else 'rw'}",
                uri=True,
                isolation_level=None,
                timeout=busy_timeout,
                check_same_thread=False,
            )
            if not self.is_spool():  # never create our tables in another program's file
                self._conn.close()
                raise NotASpool(path)
        if read_only:  # nothing is migrated: an old file is read the old way
            try:
                schema.stored_version(self._conn, path)
                self._kinds = schema.has_kinds(self._conn) if self.has_own_tables() else True
            except BaseException:
                self._conn.close()
                raise
            return
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            with self.transaction():
                schema.prepare(self._conn, path)
            if create:  # made just now: 0600 even where the umask was not set (in process)
                narrow(sqlite_files(path), what="the spool file", quiet=True)
        except BaseException:
            self._conn.close()
            raise
        self._kinds = True
        self.bytes_added = 0  # by the transaction that runs: inserts less deletes (spool.space)

    def is_spool(self) -> bool:
        """True for a file of ours or of ilagent 0.9 (its ``ilagent`` or ``event_items`` table)."""
        return bool(legacy.tables(self._conn) & {"queue", "ilagent", "event_items"})

    def has_own_tables(self) -> bool:
        """False for a file only ilagent 0.9 has written so far (opened read-only)."""
        return "queue" in legacy.tables(self._conn)

    def take_over_legacy(self, *, now: float) -> legacy.Takeover:
        """Move what ilagent 0.9 left in ``event_items`` into the queue, in one transaction."""
        with self.transaction():
            return legacy.take_over(self._conn, now=now)

    def take_over_legacy_mqtt(self, convert: legacy.Convert, *, now: float) -> legacy.Takeover:
        """Map and move ilagent 0.9's ``mqtt_queue`` rows into the queue, in one transaction."""
        with self.transaction():
            return legacy.take_over_mqtt(self._conn, convert, now=now)

    def legacy_waiting(self) -> tuple[int, int]:
        """Rows of ilagent 0.9 not taken over yet: ``event_items``, ``mqtt_queue``."""
        return legacy.waiting(self._conn)

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def pragma(self, name: str) -> Any:
        """The value of a pragma (for tests and diagnostics)."""
        return self._conn.execute(f"PRAGMA {name}").fetchone()[0]  # name is ours, never input

    def begin(self) -> None:
        """Start a write transaction (waits up to the busy timeout for another writer)."""
        self._conn.execute("BEGIN IMMEDIATE")
        self.bytes_added = 0

    def commit(self) -> None:
        """Commit the transaction; with ``synchronous=FULL`` it is on disk when this returns."""
        self._conn.execute("COMMIT")

    def rollback(self) -> None:
        """Undo the transaction, if one is still open."""
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction: committed on success, rolled back on any error."""
        self.begin()
        try:
            yield self._conn
            self.commit()
        except BaseException:
            self.rollback()
            raise

    # ---- writes (call inside a transaction) -------------------------------------------------

    def insert(self, *, integration_key: str, path: str, event: str, received_at: float,
               kind: str | None = None) -> int:
        """Append a row; returns its id. ``kind`` None: read from ``path``
        (:func:`~ilagent.records.kind_of_path`), for writers that do not say."""
        return self.insert_many([(integration_key, path, event, received_at,
                                  kind or kind_of_path(path))])[0]

    def insert_many(self, rows: list[Row]) -> list[int]:
        """Append rows ``(integration_key, path, event, received_at, kind)``; their ids.

        A few multi-row statements instead of one per event: the writer thread then gives
        up and takes back the interpreter lock a few times per batch, not twice per event.
        """
        ids: list[int] = []
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start : start + INSERT_CHUNK]
            cursor = self._conn.execute(
                "INSERT INTO queue (integration_key, path, event, received_at, kind) VALUES "
                + ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk)),
                [value for row in chunk for value in row],
            )
            assert cursor.lastrowid is not None
            # one statement under the write lock: AUTOINCREMENT hands out consecutive ids
            ids.extend(range(cursor.lastrowid - len(chunk) + 1, cursor.lastrowid + 1))
        self.bytes_added += sum(row_bytes(key, path, event) for key, path, event, *_ in rows)
        return ids

    def delete(self, row_id: int) -> bool:
        """Remove a delivered event; False if it was not there."""
        freed = self._conn.execute(f"DELETE FROM queue WHERE id = ? RETURNING {ROW_BYTES_SQL}",
                                   (row_id,)).fetchall()
        self.bytes_added -= sum(size for (size,) in freed)
        return bool(freed)

    def record_attempt(
        self, row_id: int, *, attempts: int, next_attempt_at: float, last_error: str | None
    ) -> None:
        """Persist how often an event was tried, when it is due again and what went wrong."""
        self._conn.execute(
            "UPDATE queue SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
            (attempts, next_attempt_at, last_error, row_id),
        )

    def dead_letter(
        self,
        row_id: int,
        *,
        reason: str,
        status: int | None,
        detail: str,
        attempts: int,
        now: float,
    ) -> bool:
        """Move an event to ``dead_letters``; False if it was not in the queue."""
        moved = self._conn.execute(
            "INSERT INTO dead_letters (id, integration_key, path, event, received_at, attempts, "
            "reason, status, detail, dead_at, kind) SELECT id, integration_key, path, event, "
            "received_at, MAX(attempts, ?), ?, ?, ?, ?, kind FROM queue WHERE id = ?",
            (attempts, reason, status, detail, now, row_id),
        ).rowcount
        self._conn.execute("DELETE FROM queue WHERE id = ?", (row_id,))
        return moved > 0

    def insert_dead_letter(self, *, integration_key: str, path: str, event: str, reason: str,
                           detail: str, now: float, kind: str | None = None) -> int:
        """Keep a message refused before it was queued (an id from the queue's sequence)."""
        row_id = self.insert(integration_key=integration_key, path=path, event=event,
                             received_at=now, kind=kind)
        self.dead_letter(row_id, reason=reason, status=None, detail=detail, attempts=0, now=now)
        return row_id

    def retry(self, ids: Iterable[int] | None = None) -> int:
        """Move dead letters (all, or these ids) back into the queue under the ids they had,
        in one statement each way; how many moved."""
        where, args = _ids_clause(ids)
        self._conn.execute(
            "INSERT INTO queue (id, integration_key, path, event, received_at, kind) "
            f"SELECT id, integration_key, path, event, ?, kind FROM dead_letters{where} "
            "ORDER BY id",
            (time.time(), *args),
        )
        moved = self._conn.execute(f"DELETE FROM dead_letters{where}", args).rowcount
        self._bump_generation()
        return int(moved)

    def purge(self, table: str) -> int:
        """Delete every row of ``queue`` or ``dead_letters``; how many there were."""
        if table not in ("queue", "dead_letters"):
            raise ValueError(f"no such table {table!r}")
        deleted = self._conn.execute(f"DELETE FROM {table}").rowcount  # table checked above
        self._bump_generation()
        return int(deleted)

    def _bump_generation(self) -> None:
        self._conn.execute(
            "INSERT INTO queue_meta (key, value) VALUES ('generation', '1') ON CONFLICT(key) "
            "DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)"
        )

    def generations(self) -> tuple[int, int]:
        """The change counter of outside changes, and the last one a running daemon saw."""
        meta = dict(self._conn.execute(
            "SELECT key, value FROM queue_meta WHERE key IN ('generation', 'acknowledged')"))
        return int(meta.get("generation", 0)), int(meta.get("acknowledged", 0))

    def acknowledge(self, generation: int) -> None:
        """Record that the running daemon has seen the outside changes up to ``generation``."""
        self._conn.execute(
            "INSERT OR REPLACE INTO queue_meta (key, value) VALUES ('acknowledged', ?)",
            (str(generation),),
        )

    def present(self, ids: Iterable[int]) -> set[int]:
        """Which of ``ids`` are still in the queue."""
        where, args = _ids_clause(ids)
        if not args:
            return set()
        return {r[0] for r in self._conn.execute(f"SELECT id FROM queue{where}", args)}

    def probe(self, now: float) -> None:
        """A small write that proves the file takes writes."""
        self._conn.execute(
            "INSERT OR REPLACE INTO queue_meta (key, value) VALUES ('probe', ?)", (repr(now),)
        )

    # ---- reads ------------------------------------------------------------------------------

    def page(
        self, *, after: int, limit: int, key: str | None = None, upto: int | None = None
    ) -> list[QueuedEvent]:
        """Up to ``limit`` queued events with an id above ``after``, oldest first.

        With ``key``: only that integration key's, and only ids up to ``upto``.
        """
        columns = self._columns(QUEUE_COLUMNS)
        if key is None:
            rows = self._conn.execute(
                f"SELECT {columns} FROM queue WHERE id > ? ORDER BY id LIMIT ?",
                (after, limit),
            ).fetchall()
        else:
            rows = self._conn.execute(
                f"SELECT {columns} FROM queue WHERE id > ? AND id <= ? "
                "AND integration_key = ? ORDER BY id LIMIT ?",
                (after, upto if upto is not None else 2**62, key, limit),
            ).fetchall()
        return [QueuedEvent(*_with_kind(row)) for row in rows]

    def dead_letters(self, *, limit: int) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, oldest first."""
        rows = self._conn.execute(
            f"SELECT {self._columns(DEAD_COLUMNS)} FROM dead_letters ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
        return [DeadLetter(*_with_kind(row)) for row in rows]

    def _columns(self, columns: str) -> str:
        """The column list to read; a file of schema 1 opened read-only has no ``kind`` yet."""
        return columns if self._kinds else columns.replace(", kind", ", NULL")

    def dead_letter_ids(self, ids: Iterable[int]) -> set[int]:
        """Which of ``ids`` are dead letters."""
        where, args = _ids_clause(ids)
        return {r[0] for r in self._conn.execute(f"SELECT id FROM dead_letters{where}", args)}

    def stored_bytes(self) -> int:
        """What the rows of ``queue`` and ``dead_letters`` hold, as the cap counts them."""
        return sum(int(self._conn.execute(f"SELECT COALESCE(SUM({ROW_BYTES_SQL}), 0) FROM "
                                          f"{table}").fetchone()[0])  # our own table names
                   for table in ("queue", "dead_letters"))

    def stats(self) -> QueueStats:
        """Depth, oldest acceptance time and number of dead letters."""
        depth, oldest = self._conn.execute(
            "SELECT COUNT(*), MIN(received_at) FROM queue"
        ).fetchone()
        dead = self._conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
        return QueueStats(depth, oldest, dead)


def _with_kind(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row read with its kind last; a row of an unmigrated file gets the kind of its path."""
    return row if row[-1] is not None else (*row[:-1], kind_of_path(row[2]))


def _ids_clause(ids: Iterable[int] | None) -> tuple[str, tuple[int, ...]]:
    """A bound ``WHERE id IN (?, …)`` clause for ``ids``; empty for None (all rows)."""
    if ids is None:
        return "", ()
    args = tuple(ids)
    return f" WHERE id IN ({', '.join('?' * len(args))})", args
