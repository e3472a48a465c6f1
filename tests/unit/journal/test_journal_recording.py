"""The engine tells the journal each answer and each end; ``/trace`` serves it behind the guard."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from ilagent.config import HttpSettings, RetryPolicy
from ilagent.delivery.engine import Deliverer, Job, Verdict
from ilagent.delivery.job import Position
from ilagent.delivery.pacing import Pacer
from ilagent.ilert import IlertClient, Result
from ilagent.journal.writer import Journal
from ilagent.metrics import Metrics
from ilagent.web.probes import Probes
from ilagent.web.server import build_app
from ilagent.web.trace import TraceRoute

FAST = RetryPolicy(initial_delay=0.05, max_delay=0.1, rate_limit_delay=0.2, max_retries=2)
KEY = "il1api0123456789abcdef"


class Owner:
    """Hears how each job ended (nothing to commit here)."""

    def cancelled(self, job: Job) -> bool:
        return False

    async def finished(self, job: Job, verdict: Verdict, result: Result | None,
                       reason: str) -> None:
        pass

    def abandoned(self, job: Job) -> None:
        pass

    def attempted(self, job: Job, result: Result, delay: float) -> None:
        pass


def job(alert: str, kind: str, offset: int, *, expires_at: float | None = None) -> Job:
    event = {"integrationKey": KEY, "eventType": kind, "alertKey": alert, "summary": kind}
    return Job(owner=Owner(), source="kafka", lane=alert, integration_key=KEY,
               path=f"/v1/events/kafka/{KEY}", body=orjson.dumps(event),
               origin=f"alarms[0]@{offset}", route="default",
               position=Position("alarms", 0, offset), expires_at=expires_at)


async def fault(sandbox: TestClient[Any, Any], **spec: Any) -> None:
    assert (await sandbox.post("/sandbox/faults", json=spec)).status in (200, 201)


@pytest.fixture
async def journal(tmp_path: Path) -> Any:
    journal = Journal(str(tmp_path / "j.db"), metrics=Metrics())
    await journal.open()
    yield journal
    await journal.close()


async def deliver(ilert: IlertClient, journal: Journal, *jobs: Job) -> None:
    deliverer = Deliverer(client=ilert, policy=FAST, pacer=Pacer(per_key=0, total=0),
                          metrics=Metrics(), recorder=journal)
    for item in jobs:
        deliverer.submit(item)
    assert await deliverer.wait_idle(10)


async def test_a_delivered_event_keeps_each_answer_and_its_verdict(
        sandbox: TestClient[Any, Any], ilert: IlertClient, journal: Journal) -> None:
    """Two 503s then a 202: three answers with status and latency, verdict delivered."""
    await fault(sandbox, status=503, count=2)
    await deliver(ilert, journal, job("door", "ALERT", 7))
    [event] = await journal.story(alert_key="door", since=None, limit=10)
    assert (event["verdict"], event["reason"], event["answers"]) == ("delivered", "", 3)
    assert event["position"] == {"topic": "alarms", "partition": 0, "offset": 7}
    assert [(a["status"], a["outcome"]) for a in event["attempts"]] == [
        (503, "retry"), (503, "retry"), (202, "delivered")]
    assert all(0 < a["ms"] < 5000 for a in event["attempts"])
    assert event["integrationKey"] == "******************cdef" and KEY not in str(event)


async def test_dead_letters_keep_their_reason(sandbox: TestClient[Any, Any],
                                              ilert: IlertClient, journal: Journal) -> None:
    """A 400 is dead-lettered as rejected; three 503s with --max_retries 2 as
    retries_exhausted; an event past its age is stale and has no answer."""
    await fault(sandbox, status=400, count=1)
    await deliver(ilert, journal, job("a", "ALERT", 1))
    await fault(sandbox, status=503, count=3)
    await deliver(ilert, journal, job("b", "ALERT", 2), job("c", "ALERT", 3, expires_at=1.0))
    events = {e["alertKey"]: e for e in await journal.story(alert_key=None, since=0.0,
                                                            limit=10)}
    assert (events["a"]["verdict"], events["a"]["reason"]) == ("dead_lettered", "rejected")
    assert events["a"]["attempts"][0]["status"] == 400
    assert (events["b"]["verdict"], events["b"]["reason"], events["b"]["answers"]) == (
        "dead_lettered", "retries_exhausted", 3)
    assert (events["c"]["verdict"], events["c"]["attempts"]) == ("stale", [])


async def test_a_file_that_refuses_writes_never_stops_delivery(
        sandbox: TestClient[Any, Any], ilert: IlertClient, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """The journal's file is gone read-only under it: events are still delivered, the batch is
    counted as dropped and said once."""
    metrics = Metrics()
    journal = Journal(str(tmp_path / "j.db"), metrics=metrics)
    await journal.open()
    assert journal._db is not None
    journal._db._conn.execute("PRAGMA query_only = ON")  # every write now fails
    await deliver(ilert, journal, job("door", "ALERT", 1), job("door", "RESOLVE", 2))
    with caplog.at_level(logging.WARNING):
        await journal.flush()
        await deliver(ilert, journal, job("door", "ALERT", 3))
        await journal.flush()
    lines = [r.getMessage() for r in caplog.records if "not journaled" in r.getMessage()]
    assert len(lines) == 1 and "delivery goes on" in lines[0]
    assert 'ilagent_journal_events_total{result="dropped"} 3.0' in metrics.render().decode()
    body = await (await sandbox.get("/sandbox/events")).json()
    assert len(body["events"] if isinstance(body, dict) else body) == 3  # all delivered
    await journal.close()


async def trace_client(journal: Journal | None, **http: Any) -> TestClient[Any, Any]:
    settings = HttpSettings(port=1, **http)
    app = build_app(metrics=Metrics(), probes=Probes(), settings=settings)
    TraceRoute(journal).add_routes(app)
    client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


async def test_trace_answers_json_behind_the_token(
        sandbox: TestClient[Any, Any], ilert: IlertClient, journal: Journal) -> None:
    """/trace?alert_key= is 401 without the token, 200 with the alert's events with it."""
    await deliver(ilert, journal, job("Door", "ALERT", 1), job("door", "RESOLVE", 2))
    client = await trace_client(journal, tokens=("s3cret-token-1",))
    try:
        assert (await client.get("/trace", params={"alert_key": "door"})).status == 401
        response = await client.get("/trace", params={"alert_key": " DOOR", "since": "1h"},
                                    headers={"Authorization": "Bearer s3cret-token-1"})
        body = await response.json()
        assert response.status == 200, body
        assert [e["eventType"] for e in body["events"]] == ["ALERT", "RESOLVE"]
        assert body["alertKey"] == " DOOR" and body["since"].endswith("Z")
    finally:
        await client.close()


async def test_trace_refuses_a_client_outside_the_allow_list(journal: Journal) -> None:
    """An address not in --http_allow gets 403 before anything is read."""
    from ipaddress import ip_network

    client = await trace_client(journal, allow=(ip_network("192.0.2.0/24"),))
    try:
        assert (await client.get("/trace", params={"alert_key": "door"})).status == 403
    finally:
        await client.close()


@pytest.mark.parametrize(("query", "status", "code"), [
    ({}, 400, "MISSING_PARAMETER"),
    ({"alert_key": "door", "since": "1y"}, 400, "INVALID_PARAMETER"),
    ({"since": "1h", "limit": "0"}, 400, "INVALID_PARAMETER"),
])
async def test_trace_says_what_is_wrong_with_a_request(
        journal: Journal, query: dict[str, str], status: int, code: str) -> None:
    """Missing or malformed parameters are 400 in ilert's error shape."""
    client = await trace_client(journal)
    try:
        response = await client.get("/trace", params=query)
        assert (response.status, (await response.json())["code"]) == (status, code)
    finally:
        await client.close()


async def test_trace_of_a_daemon_without_a_journal_says_so() -> None:
    """No journal: 404 NO_JOURNAL naming --journal."""
    client = await trace_client(None)
    try:
        response = await client.get("/trace", params={"alert_key": "door"})
        body = await response.json()
        assert (response.status, body["code"]) == (404, "NO_JOURNAL")
        assert "--journal" in body["message"]
    finally:
        await client.close()
