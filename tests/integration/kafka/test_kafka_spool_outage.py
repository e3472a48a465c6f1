"""The Kafka spool's intake through a broker outage, on a broker of its own: 503 with
Retry-After while the broker is down, 202 again once it is back, nothing answered 202 lost."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from helpers import FAST, Sandbox, create_topic, status_or_none, unique, wait_until

PRODUCE_TIMEOUT = 2.0  # --spool_produce_timeout
SLACK = 1.5  # what a 503 may take beyond it (the request, the event loop, a loaded CI machine)


def post(port: int, event: dict[str, Any]) -> tuple[int, dict[str, str], float]:
    """POST one event to the intake: its status, headers and how long the answer took."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/events", method="POST",
                                     data=json.dumps(event).encode(),
                                     headers={"Content-Type": "application/json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, headers = response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        status, headers = exc.code, dict(exc.headers)
    return status, headers, time.monotonic() - started


def test_a_broker_outage_is_503_with_retry_after_and_loses_nothing_answered_202(
        tmp_path: Path, sandbox: Sandbox, run_ilagent: Any) -> None:
    """The spool's only broker stops: /ready/intake fails and every event is a 503 with
    Retry-After within --spool_produce_timeout; it starts again: the intake takes events
    again, and every event answered 202, before or after, reaches ilert."""
    import broker

    own = broker.start(tmp_path / "kafka")
    try:
        bootstrap = own.bootstrap
        topic = create_topic(bootstrap, unique("spool"))
        key, port = unique("il1api"), broker.free_port()
        daemon = run_ilagent("daemon", "-v", "-p", str(port), "--http_rate_limit", "0",
                             "--kafka_brokers", bootstrap, "--kafka_group_id", unique("g"),
                             "--kafka_offset_reset", "earliest", *FAST,
                             "--spool", f"kafka:{topic}",
                             "--spool_produce_timeout", str(PRODUCE_TIMEOUT))
        ready = f"http://127.0.0.1:{port}/ready"
        wait_until(lambda: status_or_none("GET", ready) == 204, timeout=60,
                   what="the daemon ready")
        accepted: list[str] = []
        counter = iter(range(10_000))

        def send() -> tuple[int, dict[str, str], float]:
            summary = f"e#{next(counter)}"
            status, headers, took = post(port, {"integrationKey": key, "eventType": "ALERT",
                                                "alertKey": "a", "summary": summary})
            if status == 202:
                accepted.append(summary)
            return status, headers, took

        assert all(send()[0] == 202 for _ in range(20))
        own.stop()
        wait_until(lambda: status_or_none("GET", f"{ready}/intake") == 503, timeout=15,
                   what="/ready/intake failing while the broker is down")
        for _ in range(3):
            status, headers, took = send()
            assert status == 503, status
            assert int(headers["Retry-After"]) >= 1, headers
            assert took <= PRODUCE_TIMEOUT + SLACK, f"the 503 took {took:.1f} s"
        assert daemon.alive()
        own.start_again()
        wait_until(lambda: send()[0] == 202, timeout=60, what="a 202 after the broker is back")
        wait_until(lambda: status_or_none("GET", f"{ready}/intake") == 204, timeout=15,
                   what="/ready/intake again")
        assert all(send()[0] == 202 for _ in range(20))

        def delivered() -> set[str]:
            return {body["summary"] for body in sandbox.bodies(key)}

        wait_until(lambda: set(accepted) <= delivered(), timeout=60,
                   what=f"all {len(accepted)} events answered 202 delivered")
        assert daemon.stop() == 0
    finally:
        own.destroy()
