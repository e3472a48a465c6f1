"""The heartbeat proxy goes through the same pacing and gate as every delivery: a ping ilert
took moments ago is not sent again, and an open circuit is answered, not hammered."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from http_daemon import FAST, call, event, metric, post_all, start_daemon

from helpers import Sandbox, http, unique, wait_until


def pings(sandbox: Sandbox, key: str) -> int:
    """Requests for this heartbeat that reached ilert, answered or not (it shows keys masked)."""
    masked = "*" * (len(key) - 4) + key[-4:]
    return sum(1 for r in sandbox.requests() if r["integrationKey"] == masked)


def test_a_ping_within_12_s_of_a_success_is_answered_without_a_call(
        sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """A heartbeat ilert took less than 12 s ago is answered 202 at once by GET, HEAD and POST
    without another request (ilert takes 5 pings a minute per heartbeat); another heartbeat is
    pinged as usual."""
    _daemon, base = start_daemon(run_ilagent, tmp_path / "q.db3")
    first, other = unique("il1hbtrecent"), unique("il1hbtother")
    for method in ("GET", "GET", "HEAD", "POST"):
        assert http(method, f"{base}/api/heartbeats/{first}")[0] == 202, method
    assert http("GET", f"{base}/api/heartbeats/{other}")[0] == 202
    assert (pings(sandbox, first), pings(sandbox, other)) == (1, 1)


def test_while_the_circuit_is_open_a_ping_is_503_with_retry_after_and_not_sent(
        sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """ilert failing for every key opens the circuit; a heartbeat ping meanwhile is answered
    503 with Retry-After (ilert-style JSON) and never reaches ilert; once ilert answers again
    the ping goes through."""
    daemon, base = start_daemon(run_ilagent, tmp_path / "q.db3", *FAST,
                                "--circuit_failures", "2", "--circuit_probe_interval", "1")
    key, beat = unique("il1apicircuit"), unique("il1hbtcircuit")
    sandbox.fault(status=503)
    asyncio.run(post_all(f"{base}/api/events",
                         [event(key, f"e{n}", alert=f"a{n}") for n in range(4)]))
    wait_until(lambda: metric(base, "ilagent_ilert_circuit_open") == 1, timeout=30,
               what="the circuit to open")
    status, body, headers = call("127.0.0.1", "GET", f"{base}/api/heartbeats/{beat}")
    assert (status, body["status"], body["code"]) == (503, 503, "CIRCUIT_OPEN"), body
    assert int(headers["Retry-After"]) >= 1, headers
    assert pings(sandbox, beat) == 0
    # the monitor that pinged may never read the answer: the daemon's log says it
    masked = "*" * (len(beat) - 4) + beat[-4:]
    wait_until(lambda: f"refused GET /api/heartbeats/{masked} from 127.0.0.1: 503 CIRCUIT_OPEN"
               in daemon.output(), what="the refusal's line")
    sandbox.clear_faults()
    wait_until(lambda: metric(base, "ilagent_ilert_circuit_open") == 0, timeout=30,
               what="the circuit to close")
    assert http("GET", f"{base}/api/heartbeats/{beat}")[0] == 202
    assert pings(sandbox, beat) == 1
