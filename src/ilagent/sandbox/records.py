"""The sandbox's records: the SQL schema, the :class:`Alert` row, and row <-> JSON conversion.

Pure data and functions, no connection: :mod:`.store` holds the state and the SQL that moves it;
this module holds what its rows look like and how they are shown. Keys are masked here, on the way
out (:func:`mask`); alert keys are compared in :func:`normalise_key` form. An event and a request
carry the ``route`` the ``X-Ilagent-Route`` header named (:func:`route_of`; null without one).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 2
ROUTE_HEADER = "X-Ilagent-Route"
MAX_ROUTE_LENGTH = 100

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY, alert_key TEXT NOT NULL, integration_key TEXT NOT NULL,
    status TEXT NOT NULL, summary TEXT NOT NULL, details TEXT, priority TEXT NOT NULL,
    event_count INTEGER NOT NULL, first_at TEXT NOT NULL, last_at TEXT NOT NULL,
    rev INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_status ON alerts (status);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY, at TEXT NOT NULL, path TEXT NOT NULL,
    integration_key TEXT NOT NULL, event_type TEXT NOT NULL, alert_id INTEGER NOT NULL,
    body TEXT NOT NULL, route TEXT
);
CREATE INDEX IF NOT EXISTS events_alert ON events (alert_id);
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY, at TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL,
    status INTEGER NOT NULL, body TEXT, user_agent TEXT, integration_key TEXT, answer TEXT,
    route TEXT
);
CREATE TABLE IF NOT EXISTS heartbeats (
    key TEXT PRIMARY KEY, count INTEGER NOT NULL, first_at TEXT NOT NULL, last_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (status INTEGER PRIMARY KEY, n INTEGER NOT NULL);
"""
# from each schema version to the next (version 1 had no routes)
MIGRATIONS = {1: ("ALTER TABLE events ADD COLUMN route TEXT",
                  "ALTER TABLE requests ADD COLUMN route TEXT")}
ALERT_COLUMNS = (
    "id, alert_key, integration_key, status, summary, details, priority,"
    " event_count, first_at, last_at, rev"
)
OPEN_STATUSES = ("PENDING", "ACCEPTED")


@functools.lru_cache(maxsize=1024)
def mask(key: str | None) -> str | None:
    """Hide all but the last 4 characters of a key; keys of 8 or fewer are hidden entirely."""
    if key is None:
        return None
    shown = 4 if len(key) > 8 else 0
    return "*" * (len(key) - shown) + key[len(key) - shown :]


def route_of(header: str | None) -> str | None:
    """The route an ``X-Ilagent-Route`` header names: at most :data:`MAX_ROUTE_LENGTH`
    printable characters, trimmed; anything else (or no header) is no route."""
    route = (header or "").strip()
    if not route or len(route) > MAX_ROUTE_LENGTH or not route.isprintable():
        return None
    return route


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

    def row(self) -> tuple[Any, ...]:
        """The alert as a row of the ``alerts`` table, in column order."""
        return (
            self.id, self.alert_key, self.integration_key, self.status, self.summary,
            self.details, self.priority, self.event_count, self.first_at, self.last_at, self.rev,
        )  # fmt: skip

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


def open_key(alert: Alert) -> tuple[str, str]:
    """The key the store finds an open alert by: its source and its normalised alert key."""
    return alert.integration_key, normalise_key(alert.alert_key)


def sql_limit(limit: int | None) -> int:
    """A ``LIMIT`` parameter for SQLite, where -1 means no limit."""
    return -1 if limit is None else limit


def event_json(row: tuple[Any, ...], body: dict[str, Any], route: str | None) -> dict[str, Any]:
    """An accepted event as the API shows it, from its row (without ``body`` and ``route``),
    its body and the route that sent it."""
    seq, at, path, integration_key, event_type, alert_id = row
    return {
        "seq": seq,
        "time": at,
        "path": path,
        "integrationKey": mask(integration_key),
        "eventType": event_type,
        "alertId": alert_id,
        "route": route,
        "body": body,
    }


def loads_or_none(text: str | None) -> Any:
    """The JSON value of a nullable text column; ``None`` for NULL."""
    return None if text is None else json.loads(text)


def request_json(row: tuple[Any, ...], body: Any, answer: Any, route: str | None) -> dict[str, Any]:
    """A recorded request as the API shows it, from its row (key already masked, no answer,
    no route)."""
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
        "route": route,
        "answer": answer,
    }
