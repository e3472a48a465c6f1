"""The durable queue behind the HTTP intake, with real processes: crashes, outages, dead letters."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from http_daemon import FAST, event, metric, post_all, start_daemon

from helpers import Sandbox, http, unique, wait_until


def test_sigkill_right_after_the_last_202_loses_nothing(
    sandbox: Sandbox, run_ilagent: Any, tmp_path: Path
) -> None:
    """1,000 events posted by 50 clients, SIGKILL after the last 202, restart: all 1,000 arrive."""
    db = tmp_path / "q.db3"
    # ilert's default pacing (700/min) keeps most of the events queued when the kill comes
    daemon, base = start_daemon(run_ilagent, db)
    key = unique("il1api")
    bodies = [event(key, f"event {n}", alert=f"a{n % 20}") for n in range(1000)]
    answers = asyncio.run(post_all(f"{base}/api/events", bodies, connections=50))
    daemon.kill()
    assert [status for status, _ in answers] == [202] * 1000
    assert len({body["id"] for _, body in answers}) == 1000
    delivered_before = len(sandbox.events(key))
    assert delivered_before < 1000, "nothing was left in the queue to prove recovery"

    restarted, _ = start_daemon(run_ilagent, db, *FAST)
    wait_until(
        lambda: {b["summary"] for b in sandbox.bodies(key)} >= {b["summary"] for b in bodies},
        timeout=60,
        what="all 1,000 events at the sandbox",
    )
    counts = Counter(b["summary"] for b in sandbox.bodies(key))
    assert set(counts) == {b["summary"] for b in bodies}
    # at-least-once: only events in flight at the kill may come twice
    assert sum(counts.values()) - 1000 <= 64, counts.most_common(3)
    assert restarted.stop() == 0


def test_an_outage_queues_events_and_they_drain_in_order_per_alert(
    sandbox: Sandbox, run_ilagent: Any, tmp_path: Path
) -> None:
    """While ilert answers 503 events queue (metrics show it); afterwards they drain in order."""
    _daemon, base = start_daemon(run_ilagent, tmp_path / "q.db3", *FAST)
    key = unique("il1api")
    sandbox.fault(status=503)

    def one_alert(alert: str) -> None:  # each alert's events strictly one after another
        for n in range(10):
            status, body = http(
                "POST", f"{base}/api/events", event(key, f"{alert}#{n}", alert=alert)
            )
            assert status == 202, body

    with ThreadPoolExecutor(5) as pool:  # the five alerts side by side
        list(pool.map(one_alert, [f"door-{a}" for a in range(5)]))
    wait_until(lambda: metric(base, "ilagent_queue_depth") == 50, what="queue depth 50")
    assert metric(base, r'ilagent_delivery_retries_total\{reason="503",source="http"\}') > 0
    wait_until(lambda: metric(base, "ilagent_queue_oldest_age_seconds") > 0, what="oldest age")
    # a 503 is an answer, not a connection failure: the queue is writable, so /ready stays 204
    assert http("GET", f"{base}/ready")[0] == 204
    assert sandbox.events(key) == []

    sandbox.clear_faults()
    wait_until(
        lambda: metric(base, "ilagent_queue_depth") == 0 and len(sandbox.events(key)) == 50,
        timeout=60,
        what="the queue to drain",
    )
    summaries = [b["summary"] for b in sandbox.bodies(key)]
    for a in range(5):
        assert [s for s in summaries if s.startswith(f"door-{a}#")] == [
            f"door-{a}#{n}" for n in range(10)
        ]
    assert metric(base, r'ilagent_events_delivered_total\{route="",source="http"\}') == 50


def test_dead_letters_are_kept_listed_and_retried(
    sandbox: Sandbox, run_ilagent: Any, tmp_path: Path
) -> None:
    """A 400 and an exhausted 503 become dead letters; `queue retry --all` sends them again."""
    db = tmp_path / "q.db3"
    _daemon, base = start_daemon(run_ilagent, db, *FAST, "--max_retries", "2")
    rejected_key, failing_key = unique("il1api"), unique("il1api")
    sandbox.fault(status=503, integration_key=failing_key)
    assert (
        http(
            "POST",
            f"{base}/api/events",
            {"integrationKey": rejected_key, "eventType": "RESOLVE", "alertKey": "x"},
        )[0]
        == 202
    )
    assert http("POST", f"{base}/api/events", event(failing_key, "will fail"))[0] == 202
    wait_until(lambda: metric(base, "ilagent_queue_dead_letters") == 2, what="two dead letters")
    assert (
        metric(base, r'ilagent_messages_dead_lettered_total\{reason="rejected",route="",source="http"\}')
        == 1
    )

    listing = run_ilagent("queue", "list", "--json", "-f", str(db))
    assert listing.proc.wait(30) == 0, listing.output()
    rows = [json.loads(line) for line in listing.output().splitlines() if line.startswith("{")]
    by_reason = {row["reason"]: row for row in rows}
    assert by_reason["rejected"]["status"] == 400
    assert "NO_OPEN_ALERT_WITH_KEY" in by_reason["rejected"]["detail"]
    assert (
        by_reason["retries_exhausted"]["status"],
        by_reason["retries_exhausted"]["attempts"],
    ) == (503, 3)
    assert rejected_key not in listing.output() and failing_key not in listing.output()

    sandbox.clear_faults()
    retry = run_ilagent("queue", "retry", "--all", "-f", str(db))
    assert retry.proc.wait(30) == 0, retry.output()
    wait_until(lambda: sandbox.bodies(failing_key), what="the retried event at the sandbox")
    assert sandbox.bodies(failing_key)[0]["summary"] == "will fail"


def test_a_locked_queue_file_fails_ready_and_the_intake(
    sandbox: Sandbox, run_ilagent: Any, tmp_path: Path
) -> None:
    """While another process holds the file's write lock: /ready 503 naming the queue, POST 503."""
    db = tmp_path / "q.db3"
    _daemon, base = start_daemon(run_ilagent, db)
    wait_until(lambda: http("GET", f"{base}/ready")[0] == 204, what="ready")
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        status, body = http("POST", f"{base}/api/events", event(unique("il1api"), "blocked"))
        assert status == 503 and body["code"] == "QUEUE_UNAVAILABLE", body
        status, body = wait_until(
            lambda: (r := http("GET", f"{base}/ready"))[0] == 503 and r,
            timeout=20,
            what="/ready 503",
        )
        (failing,) = [f for f in body["failing"] if f["component"] == "intake"]
        assert "locked" in failing["error"] and failing["depth"] == 0
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    wait_until(lambda: http("GET", f"{base}/ready")[0] == 204, timeout=20, what="ready again")
    assert http("POST", f"{base}/api/events", event(unique("il1api"), "after"))[0] == 202
