"""A spool whose writes keep failing (a full disk): the intake says 503 and SIGTERM still ends
the daemon within --shutdown_timeout, with one clear ERROR and no traceback.

Root ignores read-only files, so the disk is "full" the way a quota makes it: the daemon runs
with ``RLIMIT_FSIZE`` set low (and SIGXFSZ ignored), so a write past the limit fails with EFBIG.
"""

from __future__ import annotations

import asyncio
import resource
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from http_daemon import event, post_all, start_daemon

from helpers import Sandbox, http, status_or_none, unique, wait_until

FILE_LIMIT = 512 * 1024  # bytes any file of the daemon may grow to: its spool and its log
SHUTDOWN_TIMEOUT = 4.0
CLOSING = 1.5  # what closing may take after the drain: the server, the file, the process
AT_SHUTDOWN = "takes no writes at shutdown"


def files_limited_to(size: int) -> Callable[[], None]:
    """A ``preexec_fn``: the child may not write past ``size`` bytes in any file."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed

    return limit


@pytest.mark.parametrize(("ilert_latency_ms", "bound"), [
    pytest.param(0, CLOSING, id="idle"),
    pytest.param(60_000, SHUTDOWN_TIMEOUT + CLOSING, id="deliveries-in-flight"),
])
def test_a_full_disk_is_503_and_sigterm_exits_within_the_shutdown_timeout(
        sandbox: Sandbox, run_ilagent: Any, tmp_path: Path, ilert_latency_ms: int,
        bound: float) -> None:
    """Events once the disk is full are refused with 503 and /ready/intake says so; on SIGTERM
    the daemon exits 0 at once when idle, within --shutdown_timeout with deliveries still in
    flight, each time with one ERROR naming the spool file and its error, and no traceback."""
    key = unique("il1apidiskfull")
    if ilert_latency_ms:
        sandbox.fault(latency_ms=ilert_latency_ms, integration_key=key)
    db = tmp_path / "q.db3"
    daemon, base = start_daemon(run_ilagent, db, "--shutdown_timeout", str(SHUTDOWN_TIMEOUT),
                                preexec_fn=files_limited_to(FILE_LIMIT))
    statuses: list[int] = []

    def refused(size: int) -> bool:
        n = len(statuses)
        body = event(key, f"e{n}", alert=f"a{n}", **({"details": "x" * size} if size else {}))
        [(status, _)] = asyncio.run(post_all(f"{base}/api/events", [body]))
        statuses.append(status)
        return status == 503

    for size in (100_000, 10_000, 1_000, 0):  # fill the disk up to the last page
        wait_until(lambda s=size: refused(s), timeout=30, interval=0,
                   what=f"the full disk to refuse an event of {size} bytes")
    wait_until(lambda: status_or_none("GET", f"{base}/ready/intake") == 503, timeout=10,
               what="the spool to take no writes at all (its probe fails too)")
    assert statuses[0] == 202 and set(statuses) == {202, 503}, statuses
    if ilert_latency_ms:
        wait_until(lambda: http("GET", f"{sandbox.url}/sandbox/stats")[1]["inFlight"] > 0,
                   timeout=10, what="a delivery held by ilert")
    started = time.monotonic()
    code = daemon.stop(timeout=30)
    elapsed = time.monotonic() - started
    output = daemon.output()
    print(f"\n[report] full disk, ilert latency {ilert_latency_ms} ms: {statuses.count(202)} "
          f"accepted, then 503; exit {code} {elapsed:.1f} s after SIGTERM")
    assert code == 0 and elapsed < bound, output[-3000:]
    assert "Traceback" not in output
    after = output.split("SIGTERM received", 1)[1]
    [line] = [line for line in after.splitlines() if AT_SHUTDOWN in line]
    assert " ERROR " in line and str(db) in line and "disk I/O error" in line, line
