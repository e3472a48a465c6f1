"""The spool file: one owner, changes beside it respected, and what ilagent 0.9 left taken over."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from http_daemon import FAST, event, metric, post_all, start_daemon

from helpers import LEGACY_SCHEMA, Sandbox, unique, wait_until


def ilagent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ilagent", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def legacy_file(path: Path, key: str, count: int) -> None:
    """A spool file as ilagent 0.9 leaves it, with ``count`` queued events (inserted out of
    id order, to prove the takeover follows ``inserted_at``) and one it cannot send."""
    with sqlite3.connect(path) as conn:
        conn.executescript(LEGACY_SCHEMA)
        for n in reversed(range(count)):
            conn.execute(
                "INSERT INTO event_items (id, integration_key, event_type, alert_key, summary, "
                "created_at, custom_details, inserted_at, event_api_path) "
                """VALUES (?, ?, 'ALERT', 'door', ?, 'x', '{"n": 1}', ?, ?)""",
                (f"id-{n}", key, f"e{n}", f"2026-05-02 09:07:{n:02}.000",
                 None if n % 2 else f"/v1/events/mqtt/{key}"))
        conn.execute(
            "INSERT INTO event_items (id, integration_key, event_type, summary, created_at, "
            "priority, inserted_at) VALUES ('bad', ?, 'ALERT', 'x', 'x', 'MEDIUM', "
            "'2026-05-02 09:08:00.000')", (key,))
        conn.execute("INSERT INTO mqtt_queue (id, topic, payload) VALUES ('m1', 't', '{}')")


def test_a_file_of_ilagent_0_9_is_taken_over_in_order_once(
        sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """Queued event_items rows are delivered in inserted_at order; a row ilert would refuse is a
    dead letter; nothing is sent twice across a restart; MQTT rows are reported."""
    db, key = tmp_path / "ilagent.db3", unique("il1apilegacy")
    legacy_file(db, key, 12)
    listing = ilagent("queue", "list", "-f", str(db))
    assert listing.returncode == 0 and "awaiting takeover: 13 event(s)" in listing.stdout
    daemon, _base = start_daemon(run_ilagent, db, *FAST)
    wait_until(lambda: len(sandbox.events(key)) == 12, timeout=30, what="the 12 events")
    assert [b["summary"] for b in sandbox.bodies(key)] == [f"e{n}" for n in range(12)]
    paths = {e["path"].rsplit("/", 1)[0] for e in sandbox.events(key)}  # the key is masked
    assert paths == {"/api", "/api/v1/events/mqtt"}
    assert "took over 13 event(s)" in daemon.output()
    assert "1 MQTT message(s) of ilagent 0.9" in daemon.output()
    # only a daemon with MQTT's buffer on this file takes them over: the hint says so
    assert "--mqtt_host, its MQTT options and --mqtt_buffer" in daemon.output()
    assert daemon.stop() == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM event_items").fetchone()[0] == 0
        (reason, detail), = conn.execute("SELECT reason, detail FROM dead_letters").fetchall()
    assert reason == "invalid" and "priority" in detail
    _again, base = start_daemon(run_ilagent, db, *FAST)
    answers = asyncio.run(post_all(f"{base}/api/events", [event(key, "after restart")]))
    assert answers[0][0] == 202
    wait_until(lambda: len(sandbox.events(key)) == 13, timeout=30, what="the marker event")
    assert len(sandbox.events(key)) == 13  # the twelve once, and the marker


def test_a_second_daemon_on_the_same_spool_file_refuses_to_start(
        sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """One line naming the file and the owner's PID, exit 2."""
    db = tmp_path / "q.db3"
    first, _base = start_daemon(run_ilagent, db)
    import broker

    second = ilagent("daemon", "-p", str(broker.free_port()), "--http_host", "127.0.0.1",
                     "-f", str(db))
    lines = second.stderr.strip().splitlines()
    assert second.returncode == 2, second.stderr
    assert len(lines) == 1 and str(db) in lines[0], lines
    assert f"pid {first.proc.pid}" in lines[0] and "Traceback" not in second.stderr
    assert first.alive()


def test_purged_events_are_never_sent(sandbox: Sandbox, run_ilagent: Any,
                                      tmp_path: Path) -> None:
    """`queue purge queue --yes` beside a running daemon that holds the rows in memory: once
    ilert answers again, none of them reaches it."""
    db, key = tmp_path / "q.db3", unique("il1apipurge")
    sandbox.fault(status=503)
    daemon, base = start_daemon(run_ilagent, db, *FAST)
    asyncio.run(post_all(f"{base}/api/events",
                         [event(key, f"e{n}", alert=f"a{n % 5}") for n in range(40)]))
    wait_until(lambda: len(sandbox.requests()) >= 3, timeout=20, what="failing attempts")
    purge = ilagent("queue", "purge", "queue", "--yes", "-f", str(db))
    assert purge.returncode == 0, purge.stderr
    assert "deleted 40 row(s)" in purge.stdout
    assert "has taken the change into account" in purge.stdout, purge.stdout
    sandbox.clear_faults()
    asyncio.run(post_all(f"{base}/api/events", [event(key, "marker", alert="m")]))
    wait_until(lambda: sandbox.events(key), timeout=30, what="the marker event")
    wait_until(lambda: metric(base, "ilagent_events_in_flight") == 0, timeout=30,
               what="every job in memory to end")
    assert [b["summary"] for b in sandbox.bodies(key)] == ["marker"]
    assert daemon.alive()


def test_a_file_that_is_not_a_spool_is_refused_without_leaving_a_lock(tmp_path: Path) -> None:
    """-f naming a text file, or another program's SQLite file: exit 1, one line, no <file>.lock
    left behind and the other program's file unchanged."""
    import broker

    text = tmp_path / "passwd"
    text.write_text("root:x:0:0:root:/root:/bin/bash\n")
    foreign = tmp_path / "other.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE inventory (item TEXT)")
    for path in (text, foreign):
        done = ilagent("daemon", "-p", str(broker.free_port()), "--http_host", "127.0.0.1",
                       "-f", str(path))
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1, done.stderr
        assert lines[0].startswith(f"ilagent daemon: error: {path} is not an ilagent spool file")
        assert not Path(f"{path}.lock").exists()
    with sqlite3.connect(foreign) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"inventory"}
