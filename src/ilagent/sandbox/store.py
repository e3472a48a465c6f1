"""SQLite storage of the sandbox: alerts, accepted events, recorded requests, heartbeats, counters.

One implementation serves both modes: ``':memory:'`` when no path is given, a WAL file otherwise,
so state survives restarts. Writes go to memory first and :meth:`Store.flush` writes them in one
transaction with ``executemany``: per request that is a few list appends instead of seven SQL
round trips, which is what lets the sandbox keep up with a daemon under benchmark. The open
alerts, sequence numbers and status counters live in memory (loaded at open), so the alert
lifecycle never waits for SQL; every read flushes first, so reads always see every write. The
owner flushes on a short timer and on close; a crash loses at most that interval.

One connection, used only from the event loop's thread; only bound parameters reach SQL.
Integration keys are stored in clear (event bodies hold them anyway) and masked on the way out.
The schema, the :class:`Alert` row and the row-to-JSON helpers live in :mod:`.records`;
``Alert``, ``mask`` and ``normalise_key`` are re-exported here for existing imports.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from typing import Any

from ..private_files import narrow, sqlite_files
from .records import (
    ALERT_COLUMNS,
    MIGRATIONS,
    OPEN_STATUSES,
    SCHEMA,
    SCHEMA_VERSION,
    Alert,
    event_json,
    loads_or_none,
    mask,
    normalise_key,
    open_key,
    request_json,
    sql_limit,
)

__all__ = ["MAX_ROWS", "MEMORY", "SCHEMA_VERSION", "Alert", "Store", "mask", "normalise_key"]

MEMORY = ":memory:"
MAX_ROWS = 100_000  # requests and events kept; older ones are pruned so memory stays bounded


class Store:
    """The sandbox's state: SQLite behind an in-memory write buffer (see the module docstring)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        self._open: dict[tuple[str, str], Alert] = {}
        self._dirty_alerts: dict[int, Alert] = {}
        self._new_events: list[tuple[Any, ...]] = []
        self._new_requests: list[tuple[Any, ...]] = []
        self._pings: dict[str, tuple[int, str, str]] = {}
        self._counts: Counter[int] = Counter()
        self._counts_dirty = False
        self._load()

    @classmethod
    def open(cls, path: str | None = None) -> Store:
        """Open (and create if needed) the database at ``path``, or one in memory; its files
        are only its owner's."""
        if path:
            narrow(sqlite_files(path), what="the sandbox's --db file")
        db = sqlite3.connect(path or MEMORY, isolation_level=None)
        try:
            if path:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                narrow(sqlite_files(path), what="the sandbox's --db file", quiet=True)
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, *MIGRATIONS, SCHEMA_VERSION):
                raise ValueError(f"{path} holds sandbox schema {version}, not {SCHEMA_VERSION}")
            if version in MIGRATIONS:  # an older file, brought up to date in one transaction
                db.execute("BEGIN IMMEDIATE")
                for step in range(version, SCHEMA_VERSION):
                    for statement in MIGRATIONS[step]:
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")  # a constant int
                db.execute("COMMIT")
            db.executescript(SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")  # a constant int
        except BaseException:
            db.close()
            raise
        return cls(db)

    def _load(self) -> None:
        rows = self._db.execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE status IN (?, ?) ORDER BY id", OPEN_STATUSES
        )
        self._open = {open_key(alert): alert for alert in (Alert(*row) for row in rows)}
        self._counts = Counter(dict(self._db.execute("SELECT status, n FROM counters")))
        self._last_alert_id = self._max("alerts", "id")
        self._last_event_seq = self._max("events", "seq")
        self._last_request_seq = self._max("requests", "seq")

    def _max(self, table: str, column: str) -> int:
        # table and column are constants of this module, never user input
        row = self._db.execute(f"SELECT coalesce(max({column}), 0) FROM {table}").fetchone()
        return int(row[0])

    @property
    def pending(self) -> bool:
        """Whether writes wait for :meth:`flush`."""
        return bool(
            self._new_events
            or self._new_requests
            or self._dirty_alerts
            or self._pings
            or self._counts_dirty
        )

    def flush(self) -> None:
        """Write buffered changes in one transaction; on error they stay buffered."""
        if not self.pending:
            return
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                f"INSERT OR REPLACE INTO alerts ({ALERT_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [alert.row() for alert in self._dirty_alerts.values()],
            )
            db.executemany(
                "INSERT INTO events (seq, at, path, integration_key, event_type, alert_id, body,"
                " route) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                self._new_events,
            )
            db.executemany(
                "INSERT INTO requests (seq, at, method, path, status, body, user_agent,"
                " integration_key, answer, route) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self._new_requests,
            )
            db.executemany(
                "INSERT INTO heartbeats (key, count, first_at, last_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET count = count + excluded.count,"
                " last_at = excluded.last_at",
                [(key, n, first, last) for key, (n, first, last) in self._pings.items()],
            )
            if self._counts_dirty:
                db.execute("DELETE FROM counters")
                db.executemany(
                    "INSERT INTO counters (status, n) VALUES (?, ?)", self._counts.items()
                )
            db.execute("DELETE FROM events WHERE seq <= ?", (self._last_event_seq - MAX_ROWS,))
            db.execute("DELETE FROM requests WHERE seq <= ?", (self._last_request_seq - MAX_ROWS,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._clear_buffers()

    def _clear_buffers(self) -> None:
        self._dirty_alerts.clear()
        self._new_events.clear()
        self._new_requests.clear()
        self._pings.clear()
        self._counts_dirty = False

    def close(self) -> None:
        """Flush, then close the connection; the store is unusable afterwards."""
        try:
            self.flush()
        finally:
            self._db.close()

    # -- writes (buffered) ------------------------------------------------------------------

    def open_alert(self, integration_key: str, alert_key: str) -> Alert | None:
        """The open (PENDING or ACCEPTED) alert of this source with this key, if any."""
        return self._open.get((integration_key, normalise_key(alert_key)))

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
        self._last_alert_id += 1
        alert = Alert(
            self._last_alert_id, alert_key, integration_key, "PENDING", summary, details,
            priority, 0, at, at, 0,
        )  # fmt: skip
        self.save_alert(alert)
        return alert

    def save_alert(self, alert: Alert) -> None:
        """Write back an alert after an event changed it."""
        self._dirty_alerts[alert.id] = alert
        if alert.status in OPEN_STATUSES:
            self._open[open_key(alert)] = alert
        else:
            self._open.pop(open_key(alert), None)

    def insert_event(
        self,
        *,
        at: str,
        path: str,
        integration_key: str,
        event_type: str,
        alert_id: int,
        body: dict[str, Any],
        text: str,
        route: str | None = None,
    ) -> dict[str, Any]:
        """Store an accepted event (``text`` its JSON as received, ``route`` the one that sent
        it); return it as the API shows it."""
        self._last_event_seq += 1
        row = (self._last_event_seq, at, path, integration_key, event_type, alert_id)
        self._new_events.append((*row, text, route))
        return event_json(row, body, route)

    def insert_request(
        self,
        *,
        at: str,
        method: str,
        path: str,
        status: int,
        body: Any,
        text: str | None,
        user_agent: str | None,
        integration_key: str | None,
        answer: Any,
        answer_text: str,
        route: str | None = None,
    ) -> dict[str, Any]:
        """Record an answered /api request and count its status; return it as the API shows it.

        ``text`` is the body's JSON text as received; ``answer`` is what the sandbox answered,
        ``answer_text`` its JSON text; ``route`` the one that sent it.
        """
        self._last_request_seq += 1
        seq = self._last_request_seq
        row = (seq, at, method, path, status, text, user_agent, mask(integration_key))
        self._new_requests.append((*row, answer_text, route))
        self._counts[status] += 1
        self._counts_dirty = True
        return request_json(row, body, answer, route)

    def ping(self, key: str, *, at: str) -> None:
        """Count one ping of a heartbeat key."""
        count, first, _ = self._pings.get(key, (0, at, at))
        self._pings[key] = (count + 1, first, at)

    def reset(self) -> None:
        """Forget everything."""
        self._clear_buffers()
        self._db.execute("BEGIN IMMEDIATE")
        for table in ("alerts", "events", "requests", "heartbeats", "counters"):
            self._db.execute(f"DELETE FROM {table}")  # table names are constants
        self._db.execute("COMMIT")
        self._load()

    # -- reads (flush first) ----------------------------------------------------------------

    def status_counts(self) -> dict[int, int]:
        """How many /api requests were answered with each status, since the last reset."""
        return dict(self._counts)

    def alerts(self, *, status: str | None = None, limit: int | None = None) -> list[Alert]:
        """Alerts newest first, optionally only those with ``status``."""
        self.flush()
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        rows = self._db.execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts {where} ORDER BY id DESC LIMIT ?",
            (*params, sql_limit(limit)),
        ).fetchall()
        return [Alert(*row) for row in rows]

    def event_ids(self, alert_ids: list[int]) -> dict[int, list[int]]:
        """The seqs of the (retained) events of each alert, oldest first."""
        self.flush()
        result: dict[int, list[int]] = {alert_id: [] for alert_id in alert_ids}
        rows = self._db.execute(
            "SELECT e.alert_id, e.seq FROM events e JOIN json_each(?) j ON e.alert_id = j.value"
            " ORDER BY e.seq",
            (json.dumps(alert_ids),),
        )
        for alert_id, seq in rows:
            result[alert_id].append(seq)
        return result

    def events(
        self, *, since: int = 0, integration_key: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Accepted events with a seq above ``since``, oldest first."""
        self.flush()
        sql = "SELECT seq, at, path, integration_key, event_type, alert_id, body, route FROM events"
        sql += " WHERE seq > ?" + (" AND integration_key = ?" if integration_key else "")
        params: list[Any] = [since] + ([integration_key] if integration_key else [])
        rows = self._db.execute(f"{sql} ORDER BY seq LIMIT ?", (*params, sql_limit(limit)))
        return [event_json(row[:6], json.loads(row[6]), row[7]) for row in rows]

    def requests(
        self, *, since: int = 0, limit: int | None = None, last: int | None = None
    ) -> list[dict[str, Any]]:
        """Recorded requests with a seq above ``since``, oldest first; ``last`` keeps the newest."""
        self.flush()
        columns = "seq, at, method, path, status, body, user_agent, integration_key, answer, route"
        inner = f"SELECT {columns} FROM requests WHERE seq > ? ORDER BY seq DESC LIMIT ?"
        rows = self._db.execute(
            f"SELECT * FROM ({inner}) ORDER BY seq LIMIT ?",
            (since, sql_limit(last), sql_limit(limit)),
        )
        return [
            request_json(row[:8], loads_or_none(row[5]), loads_or_none(row[8]), row[9])
            for row in rows
        ]

    def heartbeats(self, *, key: str | None = None) -> list[dict[str, Any]]:
        """Heartbeat keys (masked) with their ping count, most recently pinged first."""
        self.flush()
        where, params = ("WHERE key = ?", (key,)) if key else ("", ())
        rows = self._db.execute(
            f"SELECT key, count, first_at, last_at FROM heartbeats {where} ORDER BY last_at DESC",
            params,
        )
        return [
            {"key": mask(k), "count": n, "firstPingAt": first, "lastPingAt": last}
            for k, n, first, last in rows
        ]
