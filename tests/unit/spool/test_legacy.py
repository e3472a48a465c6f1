"""Taking over ilagent 0.9's queued events: order, paths, refusals, once."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from ilagent.spool.db import QueueDB

SCHEMA = """
CREATE TABLE ilagent (key TEXT PRIMARY KEY, val TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE event_items (id TEXT PRIMARY KEY, integration_key TEXT NOT NULL,
    event_type TEXT NOT NULL, alert_key TEXT NULL, summary TEXT NOT NULL, created_at TEXT NOT NULL,
    priority TEXT NULL, images TEXT NULL, links TEXT NULL, custom_details TEXT NULL,
    details TEXT NULL, inserted_at DATETIME, event_api_path TEXT NULL);
CREATE TABLE mqtt_queue (id TEXT PRIMARY KEY, topic TEXT NOT NULL, payload TEXT NOT NULL,
    inserted_at DATETIME);
"""


def legacy(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA)
        rows = [
            ("b", "k", "ALERT", "door", "second", None, '[{"src": "https://x/i.png"}]',
             "not json", "2026-05-02 09:07:08.000", "/v1/events/mqtt/k"),
            ("a", "k", "ALERT", "door", "first", "HIGH", None, '{"n": 1}',
             "2026-05-02 09:07:07.000", None),
            ("c", "k", "RESOLVE", "door", "refused", "MEDIUM", None, None,
             "2026-05-02 09:07:09.000", None),
        ]
        conn.executemany(
            "INSERT INTO event_items (id, integration_key, event_type, alert_key, summary, "
            "priority, images, custom_details, inserted_at, event_api_path, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'x')", rows)
        conn.execute("INSERT INTO mqtt_queue VALUES ('m', 't', '{}', '2026-05-02 09:00:00')")


def test_rows_move_in_inserted_order_to_their_paths_once(tmp_path: Path) -> None:
    """Events arrive in inserted_at order at 0.9's path; an invalid one is a dead letter; the
    0.9 table is empty afterwards and a second takeover moves nothing."""
    path = tmp_path / "ilagent.db3"
    legacy(path)
    db = QueueDB(str(path))
    assert db.legacy_waiting() == (3, 1)
    taken = db.take_over_legacy(now=1.0)
    assert (taken.queued, taken.refused, taken.mqtt_waiting) == (2, 1, 1)
    rows = db.page(after=0, limit=10)
    assert [(r.path, json.loads(r.event)["summary"]) for r in rows] == [
        ("/events", "first"), ("/v1/events/mqtt/k", "second")]
    first = json.loads(rows[0].event)
    assert first["priority"] == "HIGH" and first["customDetails"] == {"n": 1}
    assert "customDetails" not in json.loads(rows[1].event)  # 0.9 reads bad JSON as absent
    (letter,) = db.dead_letters(limit=10)
    assert letter.reason == "invalid" and "priority" in letter.detail
    assert letter.id > rows[-1].id  # ids from the queue's own sequence
    assert db.legacy_waiting() == (0, 1)
    assert db.take_over_legacy(now=2.0).queued == 0
    db.close()


def test_taken_over_rows_say_what_they_hold(tmp_path: Path) -> None:
    """0.9's events are queued as kind event; its MQTT messages as the event or policy update
    they map to, or, refused, as an MQTT message (topic in the path) that a retry maps again."""
    from ilagent.spool.legacy import Converted

    path = tmp_path / "ilagent.db3"
    legacy(path)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO mqtt_queue VALUES ('n', 'p', '{}', '2026-05-02 09:00:01')")
        conn.execute("INSERT INTO mqtt_queue VALUES ('o', 'x', 'raw', '2026-05-02 09:00:02')")
    conn.close()

    def convert(topic: str, payload: bytes) -> Converted:
        if topic == "t":
            return Converted(integration_key="k", path="/v1/events/mqtt/k", event="{}")
        if topic == "p":
            return Converted(integration_key="policy", path="ilagent:policy",
                             event='{"email": "a@b", "routingKey": "r", "level": 0}')
        return Converted(reason="unrouted", detail=f"{topic} matches no topic option")

    db = QueueDB(str(path))
    db.take_over_legacy(now=1.0)
    db.take_over_legacy_mqtt(convert, now=1.0)
    assert [r.kind for r in db.page(after=0, limit=10)] == ["event", "event", "event", "policy"]
    assert [(d.kind, d.path, d.event) for d in db.dead_letters(limit=10)] == [
        ("event", "/events", d.event) for d in db.dead_letters(limit=1)] + [
        ("mqtt", "mqtt:x", "raw")]
    db.close()
