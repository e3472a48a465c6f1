"""The journal's SQLite file: its table, batched writes, the size cap and the two reads.

One table ``journal`` (columns :data:`~ilagent.journal.entries.COLUMNS`), indexed by alert key
as ilert compares it. The file runs in WAL mode with ``synchronous=NORMAL``: a
journal row lost to a power cut costs a line of history, never an event. It is made 0600 (it
holds alert keys and summaries) and its WAL is truncated after checkpoints.

**The cap.** Row ids only grow and only the oldest rows are deleted, so the rows are the ids
``min..max``. After each batch the pages in use are compared with ``max_bytes`` (two cheap
pragmas); above it, the oldest rows are deleted down to :data:`LOW_WATER` of the cap in one
statement. SQLite reuses the freed pages, so the file grows to about the cap and stays there.

:class:`JournalDB` is synchronous over one connection behind a lock; the daemon calls it
through ``asyncio.to_thread``. All SQL uses bound parameters.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ilagent.journal.entries import COLUMNS, Row, lookup
from ilagent.private_files import narrow, sqlite_files

SCHEMA_VERSION = 1
LOW_WATER = 0.8  # the cap trims down to this share of it, so trims are rare
WAL_LIMIT = 4 * 1024 * 1024  # bytes the WAL file is truncated to after a checkpoint
BUSY_TIMEOUT = 5.0
_TABLES = (
    "CREATE TABLE IF NOT EXISTS journal_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY, ended_at REAL NOT NULL, "
    "received_at REAL NOT NULL, source TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER, "
    "position INTEGER, route TEXT NOT NULL, integration_key TEXT NOT NULL, alert_key TEXT, "
    "event_type TEXT, summary TEXT, verdict TEXT NOT NULL, reason TEXT NOT NULL, "
    "answers INTEGER NOT NULL, attempts TEXT NOT NULL, lookup TEXT)",
    # by alert only: a --since read walks back from the newest row (cheaper writes)
    "CREATE INDEX IF NOT EXISTS journal_by_alert ON journal (lookup, id)",
)
_INSERT = (f"INSERT INTO journal ({COLUMNS.removeprefix('id, ')}, lookup) "
           f"VALUES ({', '.join('?' * 16)})")

# the reads of story(), by (alert key given, since given)
_STORIES = {
    (alert, since): f"SELECT {COLUMNS} FROM journal"
                    + {(True, True): " WHERE lookup = ? AND ended_at >= ?",
                       (True, False): " WHERE lookup = ?",
                       (False, True): " WHERE ended_at >= ?",
                       (False, False): ""}[(alert, since)]
                    + " ORDER BY id DESC LIMIT ?"
    for alert in (True, False) for since in (True, False)
}


class NoJournal(Exception):
    """The journal file does not exist, or is not a journal."""


class JournalDB:
    """The journal file, opened by the daemon (``create``) or read by ``trace``."""

    def __init__(self, path: str, *, max_bytes: int = 0, create: bool = True) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        if create:
            if not os.path.exists(path):  # 0600 from the first byte, whatever the umask
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            narrow(sqlite_files(path), what="the journal file")
            self._conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT,
                                         check_same_thread=False)
            try:
                self._prepare()
            except BaseException:
                self._conn.close()
                raise
        else:
            if not os.path.exists(path):
                raise NoJournal(path)
            uri = Path(path).resolve().as_uri() + "?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, isolation_level=None,
                                         timeout=BUSY_TIMEOUT, check_same_thread=False)
            try:
                if not self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                                          "AND name = 'journal'").fetchone():
                    raise NoJournal(path)
            except BaseException:
                self._conn.close()
                raise
        self._page_size = int(self._conn.execute("PRAGMA page_size").fetchone()[0])

    def _prepare(self) -> None:
        conn = self._conn
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _TABLES:
                conn.execute(statement)
            conn.execute("INSERT OR IGNORE INTO journal_meta VALUES ('schema', ?)",
                         (str(SCHEMA_VERSION),))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._conn.close()

    def write(self, rows: Iterable[Row]) -> int:
        """Insert a batch in one transaction, then hold the cap; returns the rows deleted."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN")
            try:
                conn.executemany(_INSERT, (
                    (*row, lookup(row[8]) if row[8] is not None else None) for row in rows))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return self._hold_cap() if self.max_bytes else 0

    def used_bytes(self) -> int:
        """Bytes of the pages that hold rows (the file less its free pages)."""
        pages = self._conn.execute("PRAGMA page_count").fetchone()[0]
        free = self._conn.execute("PRAGMA freelist_count").fetchone()[0]
        return int(pages - free) * self._page_size

    def _hold_cap(self) -> int:
        used = self.used_bytes()
        if used <= self.max_bytes:
            return 0
        first, last = self._conn.execute("SELECT min(id), max(id) FROM journal").fetchone()
        if first is None:
            return 0
        rows = int(last - first + 1)
        drop = min(rows, max(1, int(rows * (1 - LOW_WATER * self.max_bytes / used)) + 1))
        self._conn.execute("DELETE FROM journal WHERE id < ?", (first + drop,))
        return drop

    def count(self) -> int:
        """The rows the journal holds."""
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM journal").fetchone()[0])

    def story(self, *, alert_key: str | None = None, since: float | None = None,
              limit: int = 1000) -> list[tuple[Any, ...]]:
        """The newest ``limit`` rows of one alert (as ilert compares keys) and/or ended at or
        after the Unix time ``since``, oldest first."""
        values: list[Any] = [] if alert_key is None else [lookup(alert_key)]
        if since is not None:
            values.append(since)
        statement = _STORIES[(alert_key is not None, since is not None)]
        with self._lock:
            rows = self._conn.execute(statement, (*values, limit)).fetchall()
        rows.sort(key=lambda row: (row[2], row[0]))  # by receipt: the order they happened in
        return rows
