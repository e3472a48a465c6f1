"""Taking over a spool file of ilagent 0.9: its queued events become ours, once, in order.

ilagent 0.9 keeps events accepted by its HTTP proxy in the table ``event_items`` and MQTT
buffer messages in ``mqtt_queue`` of the same default file (``./ilagent.db3``). On start the
daemon moves every ``event_items`` row into ``queue`` in ``inserted_at`` order, in the one
transaction that also deletes them there, so a crash either moved all of them or none and no
event is sent twice. Each row becomes the event 0.9 would have posted (to its
``event_api_path``, else ilert's generic ``/events``); a row our validation refuses becomes a
dead letter with the reason.

``mqtt_queue`` rows (MQTT messages 0.9 buffered, not yet mapped) are taken over by a daemon
that runs MQTT mode, the same way: each is mapped with the daemon's current options, as 0.9
itself would have done when it got to it, and queued or kept as a dead letter. A daemon
without MQTT only reports them.

Every row is written with its kind: 0.9's events as events; its MQTT messages as the event or
policy update they map to, or, when refused, as the MQTT message itself (kind ``mqtt``, the
topic in ``path``), so that ``ilagent queue retry`` has the worker map it again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ilagent.errors import EventError
from ilagent.events import encode_event, validate_event
from ilagent.records import POLICY_PATH, RecordKind, mqtt_path

EVENT_COLUMNS = ("integration_key, event_type, alert_key, summary, priority, images, links, "
                 "custom_details, details, inserted_at, event_api_path")
GENERIC_PATH = "/events"


@dataclass(frozen=True)
class Takeover:
    """What a takeover moved: queued, refused (now dead letters), and MQTT rows left waiting."""

    queued: int = 0
    refused: int = 0
    mqtt_waiting: int = 0


def tables(conn: sqlite3.Connection) -> set[str]:
    """The names of the file's tables."""
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def waiting(conn: sqlite3.Connection) -> tuple[int, int]:
    """Rows ilagent 0.9 left: ``event_items`` and ``mqtt_queue`` (0 where a table is absent)."""
    names = tables(conn)
    return tuple(  # type: ignore[return-value]
        conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] if table in names else 0
        for table in ("event_items", "mqtt_queue")  # our own names, never input
    )


def take_over(conn: sqlite3.Connection, *, now: float) -> Takeover:
    """Move 0.9's ``event_items`` into ``queue`` (or ``dead_letters``); call inside a transaction."""
    events, mqtt = waiting(conn)
    if not events:
        return Takeover(mqtt_waiting=mqtt)
    rows = conn.execute(
        f"SELECT {EVENT_COLUMNS} FROM event_items ORDER BY inserted_at, rowid").fetchall()
    queued = refused = 0
    for row in rows:
        key, path, body, received_at = _event(row, now=now)
        try:
            text, error = encode_event(validate_event(body)).decode(), None
        except EventError as exc:
            text, error = json.dumps(body, default=str), exc
        _insert(conn, key, path, text, received_at, RecordKind.EVENT, now=now,
                dead=None if error is None else ("invalid", str(error)))
        if error is None:
            queued += 1
        else:
            refused += 1
    conn.execute("DELETE FROM event_items")
    return Takeover(queued=queued, refused=refused, mqtt_waiting=mqtt)


@dataclass(frozen=True)
class Converted:
    """What becomes of one ``mqtt_queue`` row: an event to queue (``event`` set), a dead letter
    (``reason`` set), or nothing (a filtered message or a stale heartbeat ping)."""

    integration_key: str = ""
    path: str = ""
    event: str | None = None
    reason: str | None = None
    detail: str = ""


Convert = Callable[[str, bytes], Converted]


def take_over_mqtt(conn: sqlite3.Connection, convert: Convert, *, now: float) -> Takeover:
    """Map 0.9's ``mqtt_queue`` rows into ``queue`` (or ``dead_letters``), in ``inserted_at``
    order, and delete them; call inside a transaction."""
    if "mqtt_queue" not in tables(conn):
        return Takeover()
    rows = conn.execute(
        "SELECT topic, payload, inserted_at FROM mqtt_queue ORDER BY inserted_at, rowid"
    ).fetchall()
    queued = refused = 0
    for topic, payload, inserted_at in rows:
        text = payload if isinstance(payload, str) else bytes(payload or b"").decode(
            "utf-8", "replace")
        converted = convert(str(topic), text.encode("utf-8", "surrogatepass"))
        if converted.event is None and converted.reason is None:
            continue
        if converted.reason is not None:  # kept as received: a retry maps it again
            path, kind, body = mqtt_path(str(topic)), RecordKind.MQTT, text
        else:
            path, body = converted.path, str(converted.event)
            kind = RecordKind.POLICY if path == POLICY_PATH else RecordKind.EVENT
        _insert(conn, converted.integration_key, path, body, _when(inserted_at, now), kind,
                now=now,
                dead=None if converted.reason is None else (converted.reason, converted.detail))
        if converted.reason is None:
            queued += 1
        else:
            refused += 1
    conn.execute("DELETE FROM mqtt_queue")
    return Takeover(queued=queued, refused=refused)


def _insert(conn: sqlite3.Connection, key: str, path: str, text: str, received_at: float,
            kind: RecordKind, *, now: float, dead: tuple[str, str] | None) -> None:
    """Queue one taken-over row of ``kind``, or with ``dead`` (reason, detail) keep it as a
    dead letter.

    Either way its id comes from the queue's sequence, so a dead letter's id is never reused.
    """
    row_id = conn.execute(
        "INSERT INTO queue (integration_key, path, event, received_at, kind) "
        "VALUES (?, ?, ?, ?, ?)", (key, path, text, received_at, kind.value)).lastrowid
    if dead is None:
        return
    conn.execute(
        "INSERT INTO dead_letters (id, integration_key, path, event, received_at, attempts, "
        "reason, status, detail, dead_at, kind) SELECT id, integration_key, path, event, "
        "received_at, 0, ?, NULL, ?, ?, kind FROM queue WHERE id = ?",
        (dead[0], f"taken over from ilagent 0.9: {dead[1]}", now, row_id))
    conn.execute("DELETE FROM queue WHERE id = ?", (row_id,))


def _event(row: tuple[Any, ...], *, now: float) -> tuple[str, str, dict[str, Any], float]:
    """The event 0.9 would have posted for a row, where to, and when it was accepted."""
    (key, event_type, alert_key, summary, priority, images, links, custom_details, details,
     inserted_at, api_path) = row
    body = {
        "integrationKey": key, "eventType": event_type, "summary": summary,
        "alertKey": alert_key, "details": details, "priority": priority,
        "images": _json(images), "links": _json(links), "customDetails": _json(custom_details),
    }
    return str(key or ""), api_path or GENERIC_PATH, body, _when(inserted_at, now)


def _json(text: str | None) -> Any:
    """0.9's reading: unparseable JSON text counts as absent."""
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _when(inserted_at: str | None, now: float) -> float:
    """``2026-05-02 09:07:07.123`` (UTC, SQLite's format) as Unix seconds; ``now`` if unreadable."""
    try:
        return datetime.fromisoformat(str(inserted_at)).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return now
