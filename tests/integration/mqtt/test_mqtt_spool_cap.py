"""MQTT's buffer mode against a full spool: acknowledgements wait, nothing is lost."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from helpers import (
    FAST,
    Sandbox,
    events_for,
    metric,
    publish,
    received_by_alert,
    subscribed,
    unique,
    wait_until,
)

MESSAGES = 60
ROOM_FOR = 20  # --spool_max_bytes is about this many queued messages
PADDING = "x" * 400  # makes every row about the same size


def cpu_seconds(pid: int) -> float:
    """User and system time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_full_spool_holds_mqtt_acknowledgements_until_room_frees(
        mosquitto: Any, sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """--mqtt_buffer with a spool cap of about 20 messages while ilert refuses (503): about 20
    are queued and acknowledged, the others wait unacknowledged (the broker keeps them) with
    the daemon idle, not spinning; once ilert answers, all 60 are delivered, each alert in
    order, none twice."""
    topic, key = unique("capped"), unique("il1api")
    port, db = __import__("broker").free_port(), tmp_path / "spool.db3"
    cap = ROOM_FOR * (len(PADDING) + 350)
    sandbox.fault(status=503, integration_key=key)
    daemon = run_ilagent("daemon", "-v", "-v", "-m", "127.0.0.1", "-q",
                         str(mosquitto.ports["plain"]), "-e", topic, "-n", unique("ilagent"),
                         *FAST, "--mqtt_qos", "1", "--mqtt_buffer", "--spool_max_bytes",
                         str(cap), "-p", str(port), "--http_host", "127.0.0.1", "-f", str(db))
    wait_until(lambda: subscribed(daemon), timeout=20, what="the subscription")
    messages = [{**m, "details": PADDING} for m in events_for(key, alerts=5, per_alert=12)]
    publish(mosquitto.ports["plain"], topic, messages)  # type: ignore[arg-type]

    def counts() -> tuple[int, int]:
        return (int(metric(port, "ilagent_mqtt_acks_total")),
                int(metric(port, "ilagent_mqtt_unacknowledged")))

    seen: list[tuple[int, int]] = []

    def settled() -> tuple[int, int] | None:
        """The counts once all arrived, some were queued and two looks 0.5 s apart agree."""
        seen.append(counts())
        acked, waiting = seen[-1]
        steady = len(seen) > 1 and seen[-2] == seen[-1]
        return seen[-1] if steady and acked and waiting and acked + waiting == MESSAGES \
            else None

    acked, waiting = wait_until(settled, timeout=30, interval=0.5, what="the spool to fill")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM queue").fetchone()[0] == acked
    assert ROOM_FOR // 2 <= acked <= ROOM_FOR * 2, acked
    assert daemon.proc is not None
    before = cpu_seconds(daemon.proc.pid)
    time.sleep(3.0)  # measuring what a held acknowledgement costs while it waits
    used = cpu_seconds(daemon.proc.pid) - before
    print(f"\n[report] spool full: {acked} queued and acknowledged, {waiting} held "
          f"unacknowledged; {used:.2f} s of CPU in 3 s")
    assert used < 1.0, f"the daemon used {used:.2f} s of CPU in 3 s while the spool was full"
    sandbox.clear_faults()
    wait_until(lambda: len(sandbox.events(key)) >= MESSAGES, timeout=60,
               what="all 60 messages at ilert")
    by_alert = received_by_alert(sandbox, key)
    assert sum(len(n) for n in by_alert.values()) == MESSAGES
    assert all(numbers == list(range(12)) for numbers in by_alert.values()), by_alert
    wait_until(lambda: metric(port, "ilagent_mqtt_unacknowledged") == 0, timeout=10,
               what="every message acknowledged")
