"""SQLite storage of the sandbox: alerts, accepted events, recorded requests, heartbeats, counters.

One implementation serves both modes: ``':memory:'`` when no path is given, a WAL file otherwise,
so state survives restarts. There is one connection, used only from the event loop's thread, and
calls are synchronous on purpose: each request is a handful of indexed statements in one short
transaction with no fsync (memory, or WAL with ``synchronous=NORMAL``), far cheaper than a hop to
a worker thread, and running them in order on the loop keeps the alert lifecycle free of races.
Only bound parameters reach SQL. Integration keys are stored in clear (event bodies hold them
anyway) and masked on the way out.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

MEMORY = ":memory:"
MAX_ROWS = 100_000  # requests and events kept; older ones are pruned so memory stays bounded
PRUNE_EVERY = 1_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    alert_key TEXT NOT NULL,
    key_norm TEXT NOT NULL,
    integration_key TEXT NOT NULL,
    status TEXT NOT NULL,
    summary TEXT NOT NULL,
    details TEXT,
    priority TEXT NOT NULL,
    event_count INTEGER NOT NULL,
    first_at TEXT NOT NULL,
    last_at TEXT NOT NULL,
    rev INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_open ON alerts (integration_key, key_norm, status);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    path TEXT NOT NULL,
    integration_key TEXT NOT NULL,
    event_type TEXT NOT NULL,
    alert_id INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_alert ON events (alert_id);
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT,
    user_agent TEXT,
    integration_key TEXT
);
CREATE TABLE IF NOT EXISTS heartbeats (
    key TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    first_at TEXT NOT NULL,
    last_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    status INTEGER PRIMARY KEY,
    n INTEGER NOT NULL
);
"""
_ALERT_COLUMNS = (
    "id, alert_key, integration_key, status, summary, details, priority,"
    " event_count, first_at, last_at, rev"
)


def mask(key: str | None) -> str | None:
    """Hide all but the last 4 characters of a key; short keys are hidden entirely."""
    if key is None:
        return None
    shown = 4 if len(key) > 8 else 0
    return "*" * (len(key) - shown) + key[len(key) - shown :]


def normalise_key(alert_key: str) -> str:
    """The form alert keys are compared in: trimmed, case-insensitive (as ilert compares them)."""
    return alert_key.strip().casefold()


@dataclass
class Alert:
    """One alert; ``integration_key`` is in clear here and masked by :meth:`to_json`."""

    id: int
    alert_key: str
    integration_key: str
    status: str
    summary: str
    details: str | None
    priority: str
    event_count: int
    first_at: str
    last_at: str
    rev: int

    def to_json(self, *, events: list[int] | None = None) -> dict[str, Any]:
        """The alert as the inspection API shows it; ``rev`` is the seq of its last event."""
        body: dict[str, Any] = {
            "id": self.id,
            "alertKey": self.alert_key,
            "integrationKey": mask(self.integration_key),
            "status": self.status,
            "summary": self.summary,
            "details": self.details,
            "priority": self.priority,
            "eventCount": self.event_count,
            "firstAt": self.first_at,
            "lastAt": self.last_at,
            "rev": self.rev,
        }
        if events is not None:
            body["events"] = events
        return body


class Store:
    """The sandbox's state in one SQLite connection; see the module docstring."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    @classmethod
    def open(cls, path: str | None = None) -> Store:
        """Open (and create if needed) the database at ``path``, or one in memory."""
        db = sqlite3.connect(path or MEMORY, isolation_level=None)
        if path:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        return cls(db)

    def close(self) -> None:
        """Close the connection; the store is unusable afterwards."""
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block in one transaction, rolled back if it raises."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- alerts -----------------------------------------------------------------------------

    def open_alert(self, integration_key: str, alert_key: str) -> Alert | None:
        """The newest PENDING or ACCEPTED alert of this source with this key, if any."""
        row = self._db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE integration_key = ? AND key_norm = ?"
            " AND status IN ('PENDING', 'ACCEPTED') ORDER BY id DESC LIMIT 1",
            (integration_key, normalise_key(alert_key)),
        ).fetchone()
        return Alert(*row) if row else None

    def insert_alert(
        self,
        *,
        alert_key: str,
        integration_key: str,
        summary: str,
        details: str | None,
        priority: str,
        at: str,
    ) -> Alert:
        """Create a PENDING alert with no events yet."""
        cursor = self._db.execute(
            "INSERT INTO alerts (alert_key, key_norm, integration_key, status, summary, details,"
            " priority, event_count, first_at, last_at, rev)"
            " VALUES (?, ?, ?, 'PENDING', ?, ?, ?, 0, ?, ?, 0)",
            (
                alert_key,
                normalise_key(alert_key),
                integration_key,
                summary,
                details,
                priority,
                at,
                at,
            ),
        )
        assert cursor.lastrowid is not None
        return Alert(
            cursor.lastrowid, alert_key, integration_key, "PENDING", summary, details, priority,
            0, at, at, 0,
        )  # fmt: skip

    def save_alert(self, alert: Alert) -> None:
        """Write back the fields an event can change."""
        self._db.execute(
            "UPDATE alerts SET status = ?, event_count = ?, last_at = ?, rev = ? WHERE id = ?",
            (alert.status, alert.event_count, alert.last_at, alert.rev, alert.id),
        )

    def alerts(self, *, status: str | None = None, limit: int | None = None) -> list[Alert]:
        """Alerts newest first, optionally only those with ``status``."""
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        rows = self._db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM alerts {where} ORDER BY id DESC LIMIT ?",
            (*params, _limit(limit)),
        ).fetchall()
        return [Alert(*row) for row in rows]

    def event_ids(self, alert_ids: list[int]) -> dict[int, list[int]]:
        """The seqs of the (retained) events of each alert, oldest first."""
        result: dict[int, list[int]] = {alert_id: [] for alert_id in alert_ids}
        if not alert_ids:
            return result
        rows = self._db.execute(
            "SELECT e.alert_id, e.seq FROM events e JOIN json_each(?) j ON e.alert_id = j.value"
            " ORDER BY e.seq",
            (json.dumps(alert_ids),),
        )
        for alert_id, seq in rows:
            result[alert_id].append(seq)
        return result

    # -- events and requests ----------------------------------------------------------------

    def insert_event(
        self,
        *,
        at: str,
        path: str,
        integration_key: str,
        event_type: str,
        alert_id: int,
        body: dict[str, Any],
    ) -> dict[str, Any]:
        """Store an accepted event with its body as received; return it as the API shows it."""
        seq = self._insert(
            "INSERT INTO events (at, path, integration_key, event_type, alert_id, body)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (at, path, integration_key, event_type, alert_id, json.dumps(body)),
            table="events",
        )
        return _event_json((seq, at, path, integration_key, event_type, alert_id), body)

    def events(
        self, *, since: int = 0, integration_key: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Accepted events with a seq above ``since``, oldest first."""
        sql = "SELECT seq, at, path, integration_key, event_type, alert_id, body FROM events"
        sql += " WHERE seq > ?" + (" AND integration_key = ?" if integration_key else "")
        params: list[Any] = [since] + ([integration_key] if integration_key else [])
        rows = self._db.execute(f"{sql} ORDER BY seq LIMIT ?", (*params, _limit(limit)))
        return [_event_json(row[:6], json.loads(row[6])) for row in rows]

    def insert_request(
        self,
        *,
        at: str,
        method: str,
        path: str,
        status: int,
        body: Any,
        user_agent: str | None,
        integration_key: str | None,
    ) -> dict[str, Any]:
        """Record an answered /api request and count its status; return it as shown."""
        text = None if body is None else json.dumps(body)
        masked = mask(integration_key)
        seq = self._insert(
            "INSERT INTO requests (at, method, path, status, body, user_agent, integration_key)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (at, method, path, status, text, user_agent, masked),
            table="requests",
        )
        self._db.execute(
            "INSERT INTO counters (status, n) VALUES (?, 1)"
            " ON CONFLICT (status) DO UPDATE SET n = n + 1",
            (status,),
        )
        return _request_json((seq, at, method, path, status, None, user_agent, masked), body)

    def requests(
        self, *, since: int = 0, limit: int | None = None, last: int | None = None
    ) -> list[dict[str, Any]]:
        """Recorded requests with a seq above ``since``, oldest first; ``last`` keeps the newest."""
        columns = "seq, at, method, path, status, body, user_agent, integration_key"
        if last is None:
            sql = f"SELECT {columns} FROM requests WHERE seq > ? ORDER BY seq LIMIT ?"
            params: tuple[int, ...] = (since, _limit(limit))
        else:
            sql = (
                f"SELECT * FROM (SELECT {columns} FROM requests WHERE seq > ?"
                " ORDER BY seq DESC LIMIT ?) ORDER BY seq LIMIT ?"
            )
            params = (since, last, _limit(limit))
        rows = self._db.execute(sql, params)
        return [_request_json(row, None if row[5] is None else json.loads(row[5])) for row in rows]

    def status_counts(self) -> dict[int, int]:
        """How many /api requests were answered with each status, since the last reset."""
        return dict(self._db.execute("SELECT status, n FROM counters").fetchall())

    # -- heartbeats -------------------------------------------------------------------------

    def ping(self, key: str, *, at: str) -> None:
        """Count one ping of a heartbeat key."""
        self._db.execute(
            "INSERT INTO heartbeats (key, count, first_at, last_at) VALUES (?, 1, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET count = count + 1, last_at = excluded.last_at",
            (key, at, at),
        )

    def heartbeats(self, *, key: str | None = None) -> list[dict[str, Any]]:
        """Heartbeat keys (masked) with their ping count, most recently pinged first."""
        where, params = ("WHERE key = ?", (key,)) if key else ("", ())
        rows = self._db.execute(
            f"SELECT key, count, first_at, last_at FROM heartbeats {where} ORDER BY last_at DESC",
            params,
        )
        return [
            {"key": mask(k), "count": n, "firstPingAt": first, "lastPingAt": last}
            for k, n, first, last in rows
        ]

    def reset(self) -> None:
        """Forget everything."""
        with self.transaction():
            for table in ("alerts", "events", "requests", "heartbeats", "counters"):
                self._db.execute(f"DELETE FROM {table}")  # table names are constants

    def _insert(self, sql: str, params: tuple[Any, ...], *, table: str) -> int:
        seq = self._db.execute(sql, params).lastrowid
        assert seq is not None
        if seq % PRUNE_EVERY == 0:
            # `table` is one of two constants, never user input
            self._db.execute(f"DELETE FROM {table} WHERE seq <= ?", (seq - MAX_ROWS,))
        return seq


def _limit(limit: int | None) -> int:
    return -1 if limit is None else limit


def _event_json(row: tuple[Any, ...], body: dict[str, Any]) -> dict[str, Any]:
    seq, at, path, integration_key, event_type, alert_id = row
    return {
        "seq": seq,
        "time": at,
        "path": path,
        "integrationKey": mask(integration_key),
        "eventType": event_type,
        "alertId": alert_id,
        "body": body,
    }


def _request_json(row: tuple[Any, ...], body: Any) -> dict[str, Any]:
    seq, at, method, path, status, _, user_agent, masked_key = row
    return {
        "seq": seq,
        "time": at,
        "method": method,
        "path": path,
        "status": status,
        "body": body,
        "userAgent": user_agent,
        "integrationKey": masked_key,
    }
