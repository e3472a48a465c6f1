"""Rows say what they hold, beside a real daemon: `queue retry` delivers within seconds, an MQTT
message retried into a daemon without MQTT ends again, a newer file is refused."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from http_daemon import FAST, event, post_all, start_daemon

from helpers import Sandbox, unique, wait_until
from ilagent.spool.db import QueueDB


def ilagent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ilagent", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def dead(db: Path) -> dict[int, tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, reason, kind FROM dead_letters").fetchall()
    conn.close()
    return {row_id: (reason, kind) for row_id, reason, kind in rows}


def test_queue_retry_beside_a_running_daemon_is_delivered_within_seconds(
        sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """A RESOLVE refused before its alert was open is retried with `ilagent queue retry` beside
    the running daemon once the alert is open: it reaches ilert within 5 s; an MQTT message
    retried the same way becomes a dead letter again (no_mqtt) instead of being retried for
    ever; `queue list` shows each row's kind."""
    db, key = tmp_path / "q.db3", unique("il1apiretry")
    daemon, base = start_daemon(run_ilagent, db, *FAST)
    url = f"{base}/api/events"
    [(status, answer)] = asyncio.run(post_all(url, [
        {"integrationKey": key, "eventType": "RESOLVE", "alertKey": "door"}]))
    assert status == 202
    resolve = int(answer["id"])
    wait_until(lambda: resolve in dead(db), timeout=30, what="the refused RESOLVE")
    asyncio.run(post_all(url, [event(key, "door open", alert="door")]))
    wait_until(lambda: sandbox.events(key), timeout=30, what="the ALERT")
    outside = QueueDB(str(db), create=False)  # an MQTT dead letter as --mqtt_buffer keeps it
    with outside.transaction():
        mqtt = outside.insert_dead_letter(integration_key="", path="mqtt:plant/hall1",
                                          event=json.dumps({"state": "SET"}), reason="unrouted",
                                          detail="no topic option", now=time.time(),
                                          kind="mqtt")
    outside.close()
    listing = ilagent("queue", "list", "--json", "-f", str(db))
    kinds = {row["id"]: row["kind"] for row in map(json.loads, listing.stdout.splitlines())}
    assert (kinds[resolve], kinds[mqtt]) == ("event", "mqtt")
    started = time.monotonic()
    retried = ilagent("queue", "retry", str(resolve), str(mqtt), "-f", str(db))
    assert retried.returncode == 0, retried.stderr
    wait_until(lambda: [a["status"] for a in sandbox.alerts()] == ["RESOLVED"], timeout=5,
               interval=0.05, what="the retried RESOLVE at ilert")
    print(f"\n[report] retried RESOLVE delivered {time.monotonic() - started:.2f} s after "
          "`queue retry`")
    wait_until(lambda: dead(db).get(mqtt) == ("no_mqtt", "mqtt"), timeout=5,
               what="the MQTT row to be a dead letter again")
    assert resolve not in dead(db)
    assert daemon.alive() and "Traceback" not in daemon.output()


def test_a_queue_file_of_a_newer_ilagent_is_refused_with_one_line(
        sandbox: Sandbox, tmp_path: Path) -> None:
    """A daemon started on a file stamped with a newer schema exits 1 with one line and leaves
    the file as it was."""
    import broker

    db = tmp_path / "q.db3"
    QueueDB(str(db)).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE queue_meta SET value = '7' WHERE key = 'schema'")
    conn.close()
    done = ilagent("daemon", "-p", str(broker.free_port()), "--http_host", "127.0.0.1",
                   "-f", str(db))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert "newer ilagent (queue schema 7" in lines[0] and "Traceback" not in done.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT value FROM queue_meta WHERE key = 'schema'").fetchone() == (
            "7",)
    conn.close()
