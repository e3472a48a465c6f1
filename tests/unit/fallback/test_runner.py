"""The fallback's runner and its webhook and mail channels, against a real local HTTP server and
a real SMTP server (aiosmtpd, in process), on an injected clock: nothing sleeps."""

from __future__ import annotations

import asyncio
import email
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.controller import Controller
from broker import free_port

from ilagent.config import FallbackSettings, RetryPolicy
from ilagent.delivery.engine import Deliverer, Job, Verdict
from ilagent.delivery.pacing import Pacer
from ilagent.fallback.channels import Channel, Mail, Webhook, origin, without_credentials
from ilagent.fallback.runner import Fallback, backlog
from ilagent.ilert import IlertClient, Result
from ilagent.metrics import Metrics
from ilagent.spool.store import QueueStore
from ilagent.spool.worker import SpoolWorker

TOKEN = "hook-token-5f1d2c9a"  # in the webhook's path, as many webhook URLs carry theirs


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Receiver:
    """A webhook endpoint: records each JSON body; answers ``status`` (a list: one per call,
    then 204)."""

    url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(json.loads(await request.read()))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post(f"/hooks/{TOKEN}", found.handle)
    async with TestServer(app, host="127.0.0.1") as server:
        found.url = str(server.make_url(f"/hooks/{TOKEN}"))
        yield found


class Inbox:
    """aiosmtpd's handler: keeps every mail it is given."""

    def __init__(self) -> None:
        self.mails: list[Message] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.mails.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def relay() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def make(channels: list[Channel], clock: Clock, metrics: Metrics, *, timeout: float = 5.0,
         backlog: int = 17) -> Fallback:
    settings = FallbackSettings(after=3.0, repeat=4.0, timeout=timeout)
    return Fallback(settings=settings, channels=channels, metrics=metrics,
                    backlog=lambda: backlog, last_error=lambda: "HTTP 503 down for maintenance",
                    ilert_url="https://user:pw@api.ilert.com/api", clock=clock,
                    wall=lambda: 1_700_000_000.0 + clock.now)


def counted(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_alarm_reminder_and_all_clear_reach_the_webhook_and_the_mailbox(
        receiver: Receiver, relay: tuple[Inbox, int]) -> None:
    """Open at 1000: nothing at 1002.9; the alarm at 1003 by webhook and mail; a reminder at
    1007; the circuit closes at 1008: the all-clear with the backlog. Each counted by channel
    and kind; the raised gauge follows."""
    inbox, port = relay
    clock, metrics = Clock(), Metrics()
    mail = Mail(host="127.0.0.1", port=port, sender="ilagent@plant3.example",
                recipients=("ops@plant3.example", "shift@plant3.example"), timeout=5.0)
    fallback = make([Webhook(receiver.url, timeout=5.0), mail], clock, metrics)
    await fallback.step()  # nothing yet: the circuit is closed
    fallback.circuit_moved(True)
    clock.now = 1002.9
    await fallback.step()
    assert receiver.bodies == [] and inbox.mails == []
    clock.now = 1003.0
    await fallback.step()
    assert [b["status"] for b in receiver.bodies] == ["ilert_unreachable"]
    assert counted(metrics, "ilagent_fallback_raised") == 1
    clock.now = 1007.0
    await fallback.step()
    clock.now = 1008.0
    fallback.circuit_moved(False)
    await fallback.step()
    try:
        assert [b["status"] for b in receiver.bodies] == ["ilert_unreachable", "reminder",
                                                          "all_clear"]
        alarm, _reminder, clear = receiver.bodies
        assert alarm == {"status": "ilert_unreachable", "daemon": "ilagent",
                         "version": alarm["version"], "host": socket.gethostname(),
                         "since": "2023-11-14T22:30:00Z", "at": "2023-11-14T22:30:03Z",
                         "openFor": 3, "backlog": 17,
                         "lastError": "HTTP 503 down for maintenance",
                         "ilertUrl": "https://api.ilert.com/api"}
        assert (clear["openFor"], clear["backlog"], clear["since"]) == (8, 17, alarm["since"])
        subjects = [m["Subject"] for m in inbox.mails]
        assert len(subjects) == 3 and "ilert unreachable for 3 s, 17 events waiting" in subjects[0]
        assert "reachable again after 8 s, 17 events to deliver" in subjects[2]
        assert inbox.mails[0]["To"] == "ops@plant3.example, shift@plant3.example"
        assert inbox.mails[0]["Auto-Submitted"] == "auto-generated"
        assert "backlog: 17" in inbox.mails[2].get_payload()  # type: ignore[operator]
        for channel in ("webhook", "mail"):
            assert [counted(metrics, "ilagent_fallback_alarms_total", channel=channel, kind=k)
                    for k in ("ilert_unreachable", "reminder", "all_clear")] == [1, 1, 1]
        assert counted(metrics, "ilagent_fallback_raised") == 0
    finally:
        await fallback.close()


async def test_a_failing_channel_is_counted_logged_without_its_token_and_tried_again(
        receiver: Receiver, relay: tuple[Inbox, int], caplog: pytest.LogCaptureFixture) -> None:
    """The webhook answers 500 to the alarm: mail goes on, the failure is counted and logged
    by the webhook's origin only; the reminder reaches the webhook."""
    caplog.set_level(logging.INFO, "ilagent.fallback")
    inbox, port = relay
    clock, metrics = Clock(), Metrics()
    receiver.statuses = [500]
    mail = Mail(host="127.0.0.1", port=port, sender="a@b.example", recipients=("c@d.example",),
                timeout=5.0)
    fallback = make([Webhook(receiver.url, timeout=5.0), mail], clock, metrics)
    try:
        fallback.circuit_moved(True)
        clock.now = 1003.0
        await fallback.step()
        assert len(inbox.mails) == 1
        assert counted(metrics, "ilagent_fallback_failures_total", channel="webhook") == 1
        assert counted(metrics, "ilagent_fallback_alarms_total", channel="webhook",
                       kind="ilert_unreachable") == 0
        [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR
                  and "failed" in r.getMessage()]
        assert f"ilert_unreachable by webhook ({origin(receiver.url)}) failed: HTTP 500" in line
        assert "tried again with the next reminder" in line
        assert TOKEN not in caplog.text
        clock.now = 1007.0
        await fallback.step()
        assert [b["status"] for b in receiver.bodies] == ["ilert_unreachable", "reminder"]
        assert counted(metrics, "ilagent_fallback_alarms_total", channel="webhook",
                       kind="reminder") == 1
    finally:
        await fallback.close()


async def test_a_channel_that_hangs_is_cut_off_and_holds_no_other_back(
        receiver: Receiver) -> None:
    """A relay that accepts the connection and never answers: the mail fails after the
    timeout, the webhook's alarm went at once, and the step ends within the timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # connections wait in the backlog: no greeting ever comes
        clock, metrics = Clock(), Metrics()
        mail = Mail(host="127.0.0.1", port=silent.getsockname()[1], sender="a@b.example",
                    recipients=("c@d.example",), timeout=0.5)
        fallback = make([Webhook(receiver.url, timeout=5.0), mail], clock, metrics,
                        timeout=0.5)
        try:
            fallback.circuit_moved(True)
            clock.now = 1003.0
            started = time.monotonic()
            await asyncio.wait_for(fallback.step(), 5)
            assert time.monotonic() - started < 2.0
            assert [b["status"] for b in receiver.bodies] == ["ilert_unreachable"]
            assert counted(metrics, "ilagent_fallback_failures_total", channel="mail") == 1
        finally:
            await fallback.close()


async def test_an_unreachable_webhook_fails_with_a_summary() -> None:
    """Nothing listens at the webhook's port: one failure, and the step goes on."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/hooks/{TOKEN}"
    clock, metrics = Clock(), Metrics()
    fallback = make([Webhook(url, timeout=2.0)], clock, metrics)
    try:
        fallback.circuit_moved(True)
        clock.now = 1003.0
        await fallback.step()
        assert counted(metrics, "ilagent_fallback_failures_total", channel="webhook") == 1
    finally:
        await fallback.close()


@pytest.mark.parametrize(("url", "shown", "bare"), [
    ("https://hooks.example/services/T0/B0/XyZ?key=k", "https://hooks.example",
     "https://hooks.example/services/T0/B0/XyZ?key=k"),
    ("http://user:pw@10.0.0.5:8080/alarm", "http://10.0.0.5:8080", "http://10.0.0.5:8080/alarm"),
    ("http://[::1]:9/x", "http://[::1]:9", "http://[::1]:9/x"),
])
def test_urls_are_shown_without_credentials_path_or_query(url: str, shown: str,
                                                          bare: str) -> None:
    """A webhook is named by its origin in log lines; ilert's URL loses only credentials."""
    assert origin(url) == shown
    assert without_credentials(url) == bare


class Owner:
    """A source that hands events to the engine directly (as Kafka does) and keeps nothing."""

    def cancelled(self, _job: Job) -> bool:
        return False

    async def finished(self, _job: Job, _verdict: Verdict, _result: Result | None,
                       _reason: str) -> None:
        return None

    def abandoned(self, _job: Job) -> None:
        return None

    def attempted(self, _job: Job, _result: Result, _delay: float) -> None:
        return None


async def test_the_backlog_counts_the_spool_and_delivery_once_each(
        sandbox: TestClient[Any, Any], ilert: IlertClient, store: QueueStore) -> None:
    """ilert answering 503: 6 queued rows loaded into delivery and 2 events of a source that
    went to the engine directly make a backlog of 8, not 14."""
    response = await sandbox.post("/sandbox/faults", json={"status": 503})
    assert response.status in (200, 201)
    engine = Deliverer(client=ilert, policy=RetryPolicy(initial_delay=0.05, max_delay=0.1),
                       pacer=Pacer(per_key=0, total=0), metrics=Metrics(), max_in_flight=16)
    worker = SpoolWorker(store=store, deliverer=engine, metrics=Metrics(), refresh_interval=0.05)
    for n in range(6):
        event = {"integrationKey": "il1api-backlog", "eventType": "ALERT", "alertKey": f"a{n}",
                 "summary": f"queued {n}"}
        await store.enqueue(integration_key="il1api-backlog", path="/v1/events/http/k",
                            event=json.dumps(event))
    worker.start()
    direct = Owner()
    for n in range(2):
        engine.submit(Job(owner=direct, source="kafka", integration_key="il1api-direct",
                          path="/v1/events/kafka/il1api-direct",
                          body=json.dumps({"integrationKey": "il1api-direct",
                                           "eventType": "ALERT", "alertKey": f"d{n}",
                                           "summary": f"direct {n}"}).encode(),
                          lane=("il1api-direct", f"d{n}")))
    try:
        deadline = time.monotonic() + 10
        while not (worker.loaded == 6 and worker.stats.depth == 6 and engine.pending == 8):
            assert time.monotonic() < deadline, (worker.loaded, worker.stats.depth,
                                                 engine.pending)
            await asyncio.sleep(0.02)
        assert backlog(engine, worker) == 8
        assert backlog(engine, None) == 8  # without a spool: what is in delivery
    finally:
        worker.stop_loading()
        await engine.stop(1)
        await worker.close()
