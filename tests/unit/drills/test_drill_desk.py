"""The drill desk against a real local ilert stand-in (the sandbox app, in process) and the real
delivery engine: a drill passes and pings the drill heartbeat, or fails at the stage that broke
and pings nothing; the sources are stand-ins that hand the message back through the real
mapping (or lose it), as a consumer would."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client import generate_latest

from ilagent.config import DrillSettings, MappingRules, PolicyRules, RetryPolicy
from ilagent.delivery.engine import Deliverer
from ilagent.delivery.pacing import Pacer
from ilagent.drills.desk import DrillDesk
from ilagent.drills.rounds import Stage, Verdict
from ilagent.drills.sending import Sent
from ilagent.ilert import IlertClient
from ilagent.mapping.reading import read
from ilagent.mapping.topics import Kind
from ilagent.metrics import Metrics

KEY = "il1apiDESKKEY00001"
BEAT = "ih2:drill-beat-key-0001"
SAMPLE = b'{"type": "ALARM", "mCode": "M1", "state": "SET"}'
FAST = RetryPolicy(initial_delay=0.05, max_delay=0.2, rate_limit_delay=0.3)


class Loopback:
    """A source whose drill messages come straight back through the mapping (``lose``: they
    never come back; ``skip``: this member cannot drill it)."""

    def __init__(self, source: str, *, rules: MappingRules, lose: bool = False,
                 skip: bool = False) -> None:
        self.source = source
        self.desk: DrillDesk | None = None
        self._rules, self._lose, self._skip = rules, lose, skip

    def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def send(self, drill_id: str, sample: bytes) -> Sent:
        if self._skip:
            return Sent(skipped="this member owns no partition of t")
        if not self._lose:
            reading = read(Kind.EVENT, sample, topic="t", rules=self._rules,
                           policy_rules=PolicyRules(), source=self.source)
            assert self.desk is not None
            asyncio.get_running_loop().call_soon(self.desk.arrived, self.source, drill_id,
                                                 reading)
        return Sent(where="t[0]")


async def run_once(ilert: IlertClient, *senders: Loopback, timeout: float = 2.0,
                   rules: MappingRules | None = None) -> tuple[DrillDesk, int, Metrics]:
    metrics = Metrics()
    deliverer = Deliverer(client=ilert, policy=FAST, pacer=Pacer(per_key=0, total=0),
                          metrics=metrics)
    codes: list[int] = []
    settings = DrillSettings(interval=0, timeout=timeout, message=SAMPLE, heartbeat=BEAT,
                             kafka_topic="t", once=True)
    desk = DrillDesk(settings=settings, senders=senders, deliverer=deliverer, client=ilert,
                     metrics=metrics, ready=lambda: True, stop=codes.append)
    for sender in senders:
        sender.desk = desk
    await asyncio.wait_for(desk.run(asyncio.Event()), timeout + 5)
    await deliverer.stop(1)
    return desk, codes[0], metrics


def rules() -> MappingRules:
    return MappingRules(event_key=KEY, filter_key="type", filter_val="ALARM")


async def events(sandbox: TestClient[Any, Any]) -> list[dict[str, Any]]:
    """The bodies of the events posted for KEY, whatever the sandbox answered (a RESOLVE with
    no open alert is answered 400 NO_OPEN_ALERT_WITH_KEY, as ilert does)."""
    found = await (await sandbox.get("/sandbox/requests")).json()
    return [r["body"] for r in found
            if isinstance(r["body"], dict) and r["body"].get("integrationKey") == KEY]


async def pings(sandbox: TestClient[Any, Any]) -> int:
    found = await (await sandbox.get("/sandbox/heartbeats", params={"key": BEAT})).json()
    return sum(row["count"] for row in found)


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def test_a_drill_that_came_through_passes_resolves_only_and_pings_the_heartbeat(
        sandbox: TestClient[Any, Any], ilert: IlertClient) -> None:
    """Both sources' drills are RESOLVEs for their drill alert keys, taken by ilert (400
    NO_OPEN_ALERT_WITH_KEY: no drill alert is ever open); the heartbeat is pinged once; exit 0;
    the metrics say passed, and nothing was dead-lettered."""
    desk, code, metrics = await run_once(ilert, Loopback("kafka", rules=rules()),
                                         Loopback("mqtt", rules=rules()))
    assert code == 0 and desk.last is not None and desk.last.verdict is Verdict.PASSED
    bodies = await events(sandbox)
    assert sorted(b["alertKey"] for b in bodies) == ["ilagent-drill-kafka", "ilagent-drill-mqtt"]
    assert {b["eventType"] for b in bodies} == {"RESOLVE"}
    assert await pings(sandbox) == 1 and desk.pinged is True
    assert sample(metrics, "ilagent_drill_success", source="kafka") == 1
    assert sample(metrics, "ilagent_drills_total", source="mqtt", result="passed") == 1
    assert sample(metrics, "ilagent_drill_failed_stage", source="kafka", stage="delivered") == 0
    assert (sample(metrics, "ilagent_drill_duration_seconds", source="kafka") or 0) > 0
    assert b"ilagent_messages_dead_lettered_total{" not in generate_latest(metrics.registry)


async def test_a_rejected_drill_event_fails_at_delivered_and_pings_nothing(
        sandbox: TestClient[Any, Any], ilert: IlertClient) -> None:
    """ilert answers 404 for the key (unknown): failed at delivered at once, exit 1, no ping."""
    await sandbox.post("/sandbox/faults", json={"status": 404, "integration_key": KEY})
    desk, code, metrics = await run_once(ilert, Loopback("kafka", rules=rules()))
    assert code == 1 and await pings(sandbox) == 0
    assert desk.last is not None and desk.last.traces["kafka"].failed is Stage.DELIVERED
    assert sample(metrics, "ilagent_drill_failed_stage", source="kafka", stage="delivered") == 1
    assert sample(metrics, "ilagent_drill_failures_total", source="kafka",
                  stage="delivered") == 1
    assert sample(metrics, "ilagent_drill_success", source="kafka") == 0


async def test_still_retrying_at_the_deadline_fails_at_delivered_and_is_withdrawn(
        sandbox: TestClient[Any, Any], ilert: IlertClient) -> None:
    """A 503 for the key: the drill fails at the deadline naming ilert's last answer, and its
    event stops being retried (nothing left in the engine)."""
    await sandbox.post("/sandbox/faults", json={"status": 503, "integration_key": KEY})
    desk, code, _metrics = await run_once(ilert, Loopback("kafka", rules=rules()), timeout=1.0)
    trace = desk.last.traces["kafka"] if desk.last else None
    assert code == 1 and trace is not None and trace.failed is Stage.DELIVERED
    assert "still retrying at the deadline (last answer: 503" in trace.why


@pytest.mark.parametrize(("sender", "stage"), [
    ({"lose": True}, Stage.CONSUMED),
    ({"rules": MappingRules(event_key=KEY, filter_key="type", filter_val="FAULT")},
     Stage.MAPPED),
])
async def test_a_lost_or_filtered_drill_fails_at_its_stage(
        sandbox: TestClient[Any, Any], ilert: IlertClient, sender: dict[str, Any],
        stage: Stage) -> None:
    """A message that never comes back fails at consumed (at the deadline); one the filter
    drops fails at mapped (at once); nothing reaches ilert."""
    options: dict[str, Any] = {"rules": rules(), **sender}
    desk, code, _metrics = await run_once(ilert, Loopback("kafka", **options), timeout=1.0)
    assert code == 1 and desk.last is not None
    assert desk.last.traces["kafka"].failed is stage
    assert await events(sandbox) == [] and await pings(sandbox) == 0


async def test_a_skipped_source_proves_nothing_but_fails_nothing(
        sandbox: TestClient[Any, Any], ilert: IlertClient) -> None:
    """Kafka skipped and MQTT passed: the heartbeat is pinged; all skipped: no ping, exit 1."""
    _desk, code, metrics = await run_once(ilert, Loopback("kafka", rules=rules(), skip=True),
                                          Loopback("mqtt", rules=rules()))
    assert code == 0 and await pings(sandbox) == 1
    assert sample(metrics, "ilagent_drills_total", source="kafka", result="skipped") == 1
    assert sample(metrics, "ilagent_drill_success", source="kafka") == 1
    desk, code, _metrics = await run_once(ilert, Loopback("kafka", rules=rules(), skip=True))
    assert code == 1 and desk.last is not None and desk.last.verdict is Verdict.SKIPPED
    assert await pings(sandbox) == 1


async def test_a_drill_message_no_drill_waits_for_is_finished_unsent(
        sandbox: TestClient[Any, Any], ilert: IlertClient) -> None:
    """Another replica's drill (or one from before a restart): counted, nothing sent."""
    metrics = Metrics()
    deliverer = Deliverer(client=ilert, policy=FAST, pacer=Pacer(per_key=0, total=0),
                          metrics=metrics)
    desk = DrillDesk(settings=DrillSettings(interval=12, timeout=12, message=SAMPLE),
                     senders=(), deliverer=deliverer, client=ilert, metrics=metrics,
                     ready=lambda: True, stop=lambda code: None)
    reading = read(Kind.EVENT, SAMPLE, topic="t", rules=rules(), policy_rules=PolicyRules(),
                   source="kafka")
    desk.arrived("kafka", "not-ours", reading)
    assert deliverer.pending == 0 and await events(sandbox) == []
    assert sample(metrics, "ilagent_drill_unknown_messages_total", source="kafka") == 1
    assert b"ilagent_drill_unknown_messages_total" in generate_latest(metrics.registry)
