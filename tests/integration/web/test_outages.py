"""ilert in trouble, seen from the durable intake: fair pacing, one state per outage, no give-up.

Each test prints its figures (``[report]`` lines, shown with ``-s``); the outage figures are
recorded in bench/RESULTS.md. Deadlines are the upper bounds the delivery issue sets.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from pathlib import Path
from typing import Any

from http_daemon import event, post_all, start_daemon

from helpers import Sandbox, start_sandbox, unique, wait_until

PACING_OFF = ["--rate_limit_per_key", "0", "--rate_limit_total", "0"]


def accepted(answers: list[tuple[int, Any]]) -> int:
    assert all(status == 202 for status, _ in answers), answers[:3]
    return len(answers)


def dead_letters(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])


def requests_with(sandbox: Sandbox, status: int) -> int:
    return sum(1 for r in sandbox.requests() if r["status"] == status)


def test_a_busy_key_does_not_delay_another(sandbox: Sandbox, run_ilagent: Any,
                                           tmp_path: Path) -> None:
    """400 queued events of one key under default pacing: another key's event is delivered
    within 5 s, and the busy key gets no more than the pacer allows: at 50/min a bucket of one
    token refilled at 49 a minute (pacing.py), so at most 1 + 49/60 per second since its first
    event could go — about 9 in 10 s (pacing 5x too fast would send about 50)."""
    _daemon, base = start_daemon(run_ilagent, tmp_path / "q.db3")
    busy, other = unique("il1apibusy"), unique("il1apiother")
    posted = time.monotonic()  # no event of the busy key can leave before this
    asyncio.run(post_all(f"{base}/api/events",
                         [event(busy, f"b{n}", alert=f"a{n}") for n in range(400)]))
    started = time.monotonic()
    asyncio.run(post_all(f"{base}/api/events", [event(other, "the other key")]))
    wait_until(lambda: sandbox.events(other), timeout=5, interval=0.05,
               what="the other key's event")
    waited = time.monotonic() - started
    time.sleep(max(0.0, 10 - waited))  # watch the busy key for 10 s in all
    sent = len(sandbox.events(busy))
    elapsed = time.monotonic() - posted
    allowed = 1 + math.floor(elapsed * 49 / 60)
    print(f"\n[report] other key delivered after {waited:.2f} s; busy key: {sent} in "
          f"{elapsed:.1f} s (the pacer allows {allowed})")
    assert math.floor(10 * 49 / 60) - 2 <= sent <= allowed


def test_a_503_outage_is_one_state(sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """Pacing off, 503 for 30 s with 1,000 events over 100 alerts waiting: at most 100 requests
    reach ilert meanwhile, and all are delivered within 10 s after it recovers."""
    _daemon, base = start_daemon(run_ilagent, tmp_path / "q.db3", *PACING_OFF)
    keys = [unique(f"il1api{k}x") for k in range(10)]
    sandbox.fault(status=503, duration_s=30)
    outage_ends = time.monotonic() + 30
    bodies = [event(keys[n % 10], f"e{n}", alert=f"alert{n % 100}") for n in range(1000)]
    accepted(asyncio.run(post_all(f"{base}/api/events", bodies)))
    wait_until(lambda: time.monotonic() > outage_ends, timeout=40, interval=0.5,
               what="the end of the outage")
    during = requests_with(sandbox, 503)
    wait_until(lambda: len(sandbox.events()) >= 1000, timeout=20, interval=0.1,
               what="all 1,000 events")
    after = time.monotonic() - outage_ends
    print(f"\n[report] 503 outage of 30 s, 1,000 events over 100 alerts: {during} requests "
          f"during the outage, all delivered {after:.1f} s after it ended")
    assert len(sandbox.events()) == 1000
    assert during <= 100 and after <= 10


def test_a_429_blocks_the_key_not_each_lane(sandbox: Sandbox, run_ilagent: Any,
                                            tmp_path: Path) -> None:
    """Pacing off, one key answered 429 (no Retry-After) for 30 s with 200 events over many
    alerts waiting: at most 20 requests for that key in those 30 s; all delivered after."""
    _daemon, base = start_daemon(run_ilagent, tmp_path / "q.db3", *PACING_OFF)
    key = unique("il1apilimited")
    sandbox.fault(status=429, integration_key=key, duration_s=30)
    ends = time.monotonic() + 30
    accepted(asyncio.run(post_all(f"{base}/api/events",
                                  [event(key, f"e{n}", alert=f"a{n}") for n in range(200)])))
    wait_until(lambda: time.monotonic() > ends, timeout=40, interval=0.5,
               what="the end of the rate limit")
    limited = requests_with(sandbox, 429)
    wait_until(lambda: len(sandbox.events(key)) == 200, timeout=60, interval=0.2,
               what="all 200 events")
    print(f"\n[report] key answered 429 for 30 s with 200 events waiting: {limited} requests")
    assert limited <= 20


def test_no_event_is_given_up_while_ilert_is_unreachable(sandbox: Sandbox, run_ilagent: Any,
                                                         tmp_path: Path) -> None:
    """ilert unreachable for longer than 100 times --retry_max_delay: no event becomes a dead
    letter, and all are delivered when it comes back."""
    import broker

    port = broker.free_port()
    url = f"http://127.0.0.1:{port}/api"
    db = tmp_path / "q.db3"
    _daemon, base = start_daemon(
        run_ilagent, db, *PACING_OFF, "--retry_initial_delay", "0.01", "--retry_max_delay",
        "0.05", "--circuit_probe_interval", "1", env={"ILERT_API_URL": url,
                                                      "ILERT_BEAT_URL": url})
    key = unique("il1apiunreach")
    accepted(asyncio.run(post_all(f"{base}/api/events",
                                  [event(key, f"e{n}", alert=f"a{n % 7}") for n in range(50)])))
    time.sleep(100 * 0.05 + 3)  # longer than 100 retries at the largest delay
    assert dead_letters(db) == 0
    proc = start_sandbox(port, tmp_path / "late-sandbox.log")
    try:
        late = Sandbox(f"http://127.0.0.1:{port}")
        wait_until(lambda: len(late.events(key)) == 50, timeout=30, interval=0.2,
                   what="all 50 events at the returned ilert")
    finally:
        proc.terminate()
        proc.wait(15)
    assert dead_letters(db) == 0
