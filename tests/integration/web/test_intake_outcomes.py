"""Every event the intake accepted ends delivered or dead-lettered, whatever values it held.

Hypothesis builds batches of events whose values JSON allows but an encoder may refuse
(integers beyond 64 bits, lone surrogates), nested up to the intake's depth limit and beyond,
with huge strings. Each request must get 202 or a 4xx; after the batch the spool must drain to
0 with every 202 either received by the sandbox (once) or kept as a dead letter.
"""

from __future__ import annotations

import http.client
import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from http_daemon import FAST, start_daemon
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import Sandbox, wait_until

MAX_BODY = 1024 * 1024


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"d": value}
    return value


hostile = st.one_of(
    st.integers(2**63, 2**70) | st.integers(-(2**70), -(2**63) - 1),
    st.text(max_size=10).map(lambda t: t + "\ud800" + t),
    st.integers(95, 105).map(nested),
    st.integers(1000, 300_000).map(lambda n: "x" * n),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.integers(-5, 5),
)
events = st.fixed_dictionaries(
    {"eventType": st.sampled_from(["ALERT", "ACCEPT", "RESOLVE", "COMMENT"])},
    optional={
        "customDetails": st.dictionaries(st.text(max_size=5), hostile, max_size=3),
        "details": hostile,
        "alertKey": st.sampled_from(["a", "b", "c"]) | hostile,
        "labels": st.dictionaries(st.text(max_size=5), hostile, max_size=2),
    },
)


def post(base: str, body: dict[str, Any]) -> tuple[int, Any]:
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("POST", "/api/events", body=json.dumps(body).encode(),
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def spool_counts(db: Path, key: str) -> tuple[int, list[str]]:
    """Rows of ``key`` still queued, and the ids of its dead letters."""
    with sqlite3.connect(db) as conn:
        queued = conn.execute("SELECT COUNT(*) FROM queue WHERE integration_key = ?",
                              (key,)).fetchone()[0]
        dead = [str(row[0]) for row in conn.execute(
            "SELECT id FROM dead_letters WHERE integration_key = ?", (key,))]
    return int(queued), dead


@pytest.fixture
def intake(sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> tuple[Any, str, Path]:
    db = tmp_path / "q.db3"
    daemon, base = start_daemon(run_ilagent, db, *FAST, "--http_max_body", str(MAX_BODY))
    return daemon, base, db


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(batch=st.lists(events, min_size=1, max_size=12))
def test_every_accepted_event_is_delivered_or_dead_lettered(
        intake: tuple[Any, str, Path], sandbox: Sandbox, batch: list[dict[str, Any]]) -> None:
    """202 or 4xx for each; then the queue drains and each 202 is delivered once or a dead letter."""
    daemon, base, db = intake
    key = f"il1apiprop{uuid.uuid4().hex[:12]}"
    accepted: dict[str, str] = {}  # queue id → summary
    for n, body in enumerate(batch):
        summary = f"s{n}"
        status, answer = post(base, {**body, "integrationKey": key, "summary": summary})
        assert status == 202 or 400 <= status < 500, (status, answer)
        if status == 202:
            accepted[answer["id"]] = summary
        else:
            assert answer["code"] in ("INVALID_FIELD", "INVALID_JSON", "PAYLOAD_TOO_LARGE"), answer
    wait_until(lambda: spool_counts(db, key)[0] == 0, timeout=30, interval=0.05,
               what="the queue to drain")
    _, dead = spool_counts(db, key)
    delivered = [b["summary"] for b in sandbox.bodies(key)]
    assert len(delivered) == len(set(delivered)), "an event was delivered twice"
    kept = {accepted[i] for i in dead}
    assert set(delivered) | kept == set(accepted.values())
    assert not set(delivered) & kept
    assert daemon.alive() and "Traceback" not in daemon.output()
