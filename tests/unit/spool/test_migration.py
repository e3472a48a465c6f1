"""The queue file's schema: an older file is brought forward once (rows get their kind), a newer
one is refused with one line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ilagent.cli import main
from ilagent.spool.db import QueueDB

# the tables as ilagent-py wrote them before rows had a kind (schema 1, no version stamped)
OLD_SCHEMA = """
CREATE TABLE queue (id INTEGER PRIMARY KEY AUTOINCREMENT, integration_key TEXT NOT NULL,
    path TEXT NOT NULL, event TEXT NOT NULL, received_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error TEXT);
CREATE TABLE dead_letters (id INTEGER PRIMARY KEY, integration_key TEXT NOT NULL,
    path TEXT NOT NULL, event TEXT NOT NULL, received_at REAL NOT NULL, attempts INTEGER NOT NULL,
    reason TEXT NOT NULL, status INTEGER, detail TEXT NOT NULL, dead_at REAL NOT NULL);
CREATE TABLE queue_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO queue_meta VALUES ('generation', '4');
INSERT INTO queue (integration_key, path, event, received_at, attempts) VALUES
    ('il1apiK', '/v1/events/http/il1apiK', '{"eventType": "ALERT"}', 1.0, 3),
    ('policy', 'ilagent:policy', '{"email": "a@b", "routingKey": "r", "level": 0}', 2.0, 0),
    ('il1apiK', '/events', '{"eventType": "RESOLVE"}', 3.0, 0);
INSERT INTO dead_letters VALUES
    (10, '', 'mqtt:plant/hall1', '{"x": 1}', 4.0, 0, 'unrouted', NULL, 'no topic', 5.0),
    (11, 'policy', 'ilagent:policy', '{"email": "b@c"}', 4.0, 1, 'user_not_found', 404, '-', 5.0),
    (12, 'il1apiK', '/v1/events/mqtt/il1apiK', '{}', 4.0, 1, 'rejected', 400, '-', 5.0);
"""


def old_file(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA)
    conn.close()
    return str(path)


def schema(path: str) -> str | None:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT value FROM queue_meta WHERE key = 'schema'").fetchone()
    conn.close()
    return None if row is None else str(row[0])


def test_an_old_file_gets_kinds_from_its_paths_and_a_schema_stamp(tmp_path: Path) -> None:
    """Opening a file of the old schema fills `kind` in both tables from `path` (the policy
    path, an `mqtt:` topic, else event), stamps schema 2 and keeps everything else."""
    path = old_file(tmp_path / "old.db3")
    db = QueueDB(path)
    assert [(r.id, r.kind, r.attempts) for r in db.page(after=0, limit=10)] == [
        (1, "event", 3), (2, "policy", 0), (3, "event", 0)]
    assert [(d.id, d.kind, d.reason) for d in db.dead_letters(limit=10)] == [
        (10, "mqtt", "unrouted"), (11, "policy", "user_not_found"), (12, "event", "rejected")]
    assert db.generations() == (4, 0)
    db.close()
    assert schema(path) == "2"
    again = QueueDB(path)  # a second open changes nothing
    assert [r.kind for r in again.page(after=0, limit=10)] == ["event", "policy", "event"]
    again.close()


def test_a_new_file_is_stamped_and_rows_keep_their_kind_through_retry(tmp_path: Path) -> None:
    """A fresh file starts at schema 2; a dead letter keeps its kind in both directions."""
    path = str(tmp_path / "new.db3")
    db = QueueDB(path)
    with db.transaction():
        row_id = db.insert(integration_key="", path="mqtt:t", event="{}", received_at=1.0,
                           kind="mqtt")
        db.dead_letter(row_id, reason="unrouted", status=None, detail="", attempts=0, now=2.0)
    assert [d.kind for d in db.dead_letters(limit=5)] == ["mqtt"]
    with db.transaction():
        db.retry([row_id])
    assert [(r.id, r.kind) for r in db.page(after=0, limit=5)] == [(row_id, "mqtt")]
    db.close()
    assert schema(path) == "2"


def test_queue_list_reads_an_old_file_read_only_with_kinds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`queue list` opens read-only and does not migrate, yet shows each row's kind."""
    path = old_file(tmp_path / "old.db3")
    assert main(["queue", "list", "--json", "-f", path]) == 0
    out = capsys.readouterr().out
    assert [line.count('"kind": ') for line in out.splitlines()] == [1] * 6
    assert '"kind": "policy"' in out and '"kind": "mqtt"' in out
    assert schema(path) is None


@pytest.mark.parametrize("action", [["list"], ["retry", "--all"],
                                    ["purge", "queue", "--yes"]])
def test_a_file_of_a_newer_schema_is_refused_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], action: list[str]
) -> None:
    """A file stamped with a schema newer than this ilagent knows is refused by every queue
    command with one line and exit 1, and is left untouched."""
    path = str(tmp_path / "newer.db3")
    QueueDB(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE queue_meta SET value = '3' WHERE key = 'schema'")
    conn.close()
    code = main(["queue", *action, "-f", path])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "newer ilagent" in err and "schema 3" in err and "Traceback" not in err
    assert schema(path) == "3"
