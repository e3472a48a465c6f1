"""The queue file's tables and their versions: created new, brought forward once, or refused.

Versions, stamped as ``queue_meta.schema`` (an old file has no stamp):

1. ``queue`` and ``dead_letters`` without a kind; what a row held was read from its ``path``
   (``ilagent:policy`` a policy update, ``mqtt:<topic>`` an MQTT message, else an event).
2. Both tables have ``kind`` (:class:`~ilagent.records.RecordKind`); ``path`` keeps only its own
   meaning (an event's path below ilert's API, the topic of an MQTT message).

:func:`prepare` runs inside the caller's transaction, so a migration is all or nothing. A file
stamped with a version this code does not know was written by a newer ilagent: it is refused
with :class:`NewerSchema` (one line; the daemon and ``ilagent queue`` exit 1 with it, as for
any file the machine refuses), never read with a meaning it may no longer have.
"""

from __future__ import annotations

import sqlite3

from ilagent.records import MQTT_PATH_PREFIX, POLICY_PATH, RecordKind

SCHEMA_VERSION = 2
KINDS = ("queue", "dead_letters")  # the tables whose rows have a kind
TABLES = (
    """CREATE TABLE IF NOT EXISTS queue (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        integration_key TEXT NOT NULL,
        path TEXT NOT NULL,
        event TEXT NOT NULL,
        received_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        last_error TEXT,
        kind TEXT NOT NULL DEFAULT 'event')""",
    """CREATE TABLE IF NOT EXISTS dead_letters (
        id INTEGER PRIMARY KEY,
        integration_key TEXT NOT NULL,
        path TEXT NOT NULL,
        event TEXT NOT NULL,
        received_at REAL NOT NULL,
        attempts INTEGER NOT NULL,
        reason TEXT NOT NULL,
        status INTEGER,
        detail TEXT NOT NULL,
        dead_at REAL NOT NULL,
        kind TEXT NOT NULL DEFAULT 'event')""",
)
META = "CREATE TABLE IF NOT EXISTS queue_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


class NewerSchema(sqlite3.DatabaseError):
    """The file was written by a newer ilagent: its rows may mean what this one cannot know."""

    def __init__(self, path: str, found: object) -> None:
        super().__init__(
            f"it was written by a newer ilagent (queue schema {found}; this one knows up to "
            f"{SCHEMA_VERSION}): run that version on {path}, or point -f at another file")


def prepare(conn: sqlite3.Connection, path: str) -> None:
    """Create the tables, or bring an older file's forward; call inside a transaction."""
    existed = _has_table(conn, "queue")
    stored = stored_version(conn, path)
    version = stored if stored is not None else 1 if existed else SCHEMA_VERSION
    conn.execute(META)
    for statement in TABLES:
        conn.execute(statement)
    if version < 2:
        _add_kinds(conn)
    if stored != SCHEMA_VERSION:
        conn.execute("INSERT OR REPLACE INTO queue_meta (key, value) VALUES ('schema', ?)",
                     (str(SCHEMA_VERSION),))


def stored_version(conn: sqlite3.Connection, path: str) -> int | None:
    """The file's stamped schema (None before stamps existed); raises :class:`NewerSchema`."""
    if not _has_table(conn, "queue_meta"):
        return None
    row = conn.execute("SELECT value FROM queue_meta WHERE key = 'schema'").fetchone()
    if row is None:
        return None
    try:
        version = int(row[0])
    except ValueError:  # not a number we wrote: not ours to read
        raise NewerSchema(path, repr(row[0])) from None
    if version > SCHEMA_VERSION:
        raise NewerSchema(path, version)
    return version


def has_kinds(conn: sqlite3.Connection) -> bool:
    """Whether the tables have ``kind`` (False for an old file opened read-only)."""
    return "kind" in _columns(conn, "queue")


def _add_kinds(conn: sqlite3.Connection) -> None:
    """Schema 1 → 2: a ``kind`` column in both tables, filled from ``path``."""
    for table in KINDS:  # our own table names, never input
        if "kind" not in _columns(conn, table):
            conn.execute(f"ALTER TABLE {table} ADD COLUMN kind TEXT NOT NULL DEFAULT 'event'")
        conn.execute(
            f"UPDATE {table} SET kind = CASE WHEN path = ? THEN ? "
            "WHEN substr(path, 1, ?) = ? THEN ? ELSE ? END",
            (POLICY_PATH, RecordKind.POLICY.value, len(MQTT_PATH_PREFIX), MQTT_PATH_PREFIX,
             RecordKind.MQTT.value, RecordKind.EVENT.value))


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                        (name,)).fetchone() is not None


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}  # our own name
