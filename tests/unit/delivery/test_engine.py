"""The delivery engine against a real local HTTP server (the sandbox app, in process)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from aiohttp.test_utils import TestClient

from ilagent.config import RetryPolicy
from ilagent.delivery.engine import Deliverer, Job, Verdict
from ilagent.delivery.pacing import Pacer
from ilagent.ilert import IlertClient, Result
from ilagent.metrics import Metrics

FAST = RetryPolicy(initial_delay=0.05, max_delay=0.2, rate_limit_delay=0.3)


@dataclass
class Owner:
    """Records how each job ended."""

    ended: dict[str, tuple[Verdict, int | None, str]] = field(default_factory=dict)
    abandoned_jobs: list[str] = field(default_factory=list)
    withdrawn: set[str] = field(default_factory=set)
    attempts: list[tuple[str, int | None]] = field(default_factory=list)

    def cancelled(self, job: Job) -> bool:
        return job.origin in self.withdrawn

    async def finished(self, job: Job, verdict: Verdict, result: Result | None,
                       reason: str) -> None:
        self.ended[job.origin] = (verdict, result.status if result else None, reason)

    def abandoned(self, job: Job) -> None:
        self.abandoned_jobs.append(job.origin)

    def attempted(self, job: Job, result: Result, delay: float) -> None:
        self.attempts.append((job.origin, result.status))


def engine(client: IlertClient, *, policy: RetryPolicy = FAST, max_in_flight: int = 64,
           per_key: int = 0) -> Deliverer:
    return Deliverer(client=client, policy=policy, pacer=Pacer(per_key=per_key, total=0),
                     metrics=Metrics(), max_in_flight=max_in_flight)


def job(owner: Owner, key: str, alert: str, n: int, lane: Hashable | None = "lane") -> Job:
    event = {"integrationKey": key, "eventType": "ALERT", "alertKey": alert, "summary": str(n)}
    return Job(owner=owner, source="test", lane=lane, integration_key=key,
               path=f"/v1/events/kafka/{key}", body=orjson.dumps(event),
               origin=f"{key}/{alert}/{n}")


async def until(check: Any, what: str, timeout: float = 10.0) -> None:
    """Poll ``check`` until it is truthy; fail after ``timeout`` s (never a bare sleep)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def fault(sandbox: TestClient[Any, Any], **spec: Any) -> None:
    response = await sandbox.post("/sandbox/faults", json=spec)
    assert response.status in (200, 201)


async def summaries(sandbox: TestClient[Any, Any], key: str) -> list[str]:
    response = await sandbox.get("/sandbox/events", params={"integration_key": key})
    body = await response.json()
    events = body["events"] if isinstance(body, dict) else body
    return [e["body"]["summary"] for e in events]


async def test_lanes_keep_order_while_running_concurrently(
        sandbox: TestClient[Any, Any], ilert: IlertClient) -> None:
    """Slow first requests do not let later events of the same lane overtake them."""
    await fault(sandbox, latency_ms=300, count=4)  # the first four requests are slow
    owner, deliverer = Owner(), engine(ilert)
    for n in range(10):
        for lane in range(8):
            deliverer.submit(job(owner, f"k{lane}", "door", n, lane=lane))
    most = 0  # requests the sandbox held at once: more than one means lanes ran concurrently
    while deliverer.pending:
        response = await sandbox.get("/sandbox/stats")
        most = max(most, (await response.json())["inFlight"])
        await asyncio.sleep(0.01)
    for lane in range(8):
        assert await summaries(sandbox, f"k{lane}") == [str(n) for n in range(10)]
    assert most >= 2
    assert all(v == (Verdict.DELIVERED, 202, "") for v in owner.ended.values())


async def test_rejected_event_is_dead_lettered_and_its_lane_goes_on(
        sandbox: TestClient[Any, Any], ilert: IlertClient) -> None:
    """A 400 ends the job as a dead letter; the next event of the lane is still delivered."""
    await fault(sandbox, status=400, count=1)
    owner, deliverer = Owner(), engine(ilert)
    deliverer.submit(job(owner, "k", "a", 0))
    deliverer.submit(job(owner, "k", "a", 1))
    assert await deliverer.wait_idle(10)
    assert owner.ended["k/a/0"] == (Verdict.DEAD_LETTER, 400, "rejected")
    assert owner.ended["k/a/1"][0] is Verdict.DELIVERED


async def test_retries_5xx_until_it_works(sandbox: TestClient[Any, Any],
                                          ilert: IlertClient) -> None:
    """Three 503s are retried with backoff and the event is delivered once."""
    await fault(sandbox, status=503, count=3)
    owner, deliverer = Owner(), engine(ilert)
    item = job(owner, "k", "a", 0)
    deliverer.submit(item)
    assert await deliverer.wait_idle(10)
    assert owner.ended["k/a/0"][0] is Verdict.DELIVERED and item.attempts == 4
    assert owner.attempts == [("k/a/0", 503)] * 3
    assert await summaries(sandbox, "k") == ["0"]


async def test_max_retries_dead_letters(sandbox: TestClient[Any, Any],
                                        ilert: IlertClient) -> None:
    """With max_retries 2 a permanently failing event ends after three attempts."""
    await fault(sandbox, status=503)
    owner = Owner()
    deliverer = engine(ilert, policy=RetryPolicy(initial_delay=0.01, max_delay=0.02,
                                                 max_retries=2))
    item = job(owner, "k", "a", 0)
    deliverer.submit(item)
    assert await deliverer.wait_idle(10)
    assert owner.ended["k/a/0"] == (Verdict.DEAD_LETTER, 503, "retries_exhausted")
    assert item.attempts == 3


async def test_429_holds_back_only_its_key(sandbox: TestClient[Any, Any],
                                           ilert: IlertClient) -> None:
    """A 429 for one key pauses that key (both its lanes) while another key flows at once."""
    await fault(sandbox, status=429, integration_key="slow", count=1, retry_after="1")
    owner, deliverer = Owner(), engine(ilert)
    deliverer.submit(job(owner, "slow", "a", 0, lane="slow-a"))
    await until(lambda: owner.attempts == [("slow/a/0", 429)], "the 429 to land first")
    deliverer.submit(job(owner, "slow", "b", 0, lane="slow-b"))
    for n in range(20):
        deliverer.submit(job(owner, "fast", "x", n, lane=("fast", n)))
    assert await deliverer.wait_idle(10)
    response = await sandbox.get("/sandbox/events")
    body = await response.json()
    order = [e["body"]["integrationKey"] for e in (body["events"] if isinstance(body, dict)
                                                   else body)]
    # every event of the free key went out while the limited key (both its lanes) waited
    assert order == ["fast"] * 20 + ["slow"] * 2


async def test_withdrawn_job_is_abandoned_not_sent(sandbox: TestClient[Any, Any],
                                                   ilert: IlertClient) -> None:
    """A job withdrawn during its backoff is abandoned at the next wake() and never delivered."""
    await fault(sandbox, status=503)
    owner, deliverer = Owner(), engine(ilert, policy=RetryPolicy(initial_delay=60, max_delay=60))
    deliverer.submit(job(owner, "k", "a", 0))
    deliverer.submit(job(owner, "k", "a", 1))
    await until(lambda: owner.attempts, "the first failed attempt")
    owner.withdrawn.update({"k/a/0", "k/a/1"})
    deliverer.wake()
    assert await deliverer.wait_idle(3)
    assert owner.abandoned_jobs == ["k/a/0", "k/a/1"] and owner.ended == {}


async def test_stop_abandons_retrying_jobs_promptly(sandbox: TestClient[Any, Any],
                                                    ilert: IlertClient) -> None:
    """stop() does not wait out a long backoff: the job is abandoned for redelivery."""
    await fault(sandbox, status=503)
    owner, deliverer = Owner(), engine(ilert, policy=RetryPolicy(initial_delay=30, max_delay=30))
    deliverer.submit(job(owner, "k", "a", 0))
    await until(lambda: owner.attempts, "the first failed attempt")
    assert await deliverer.stop(5)  # True: drained, not timed out waiting out the 30 s backoff
    assert owner.abandoned_jobs == ["k/a/0"] and deliverer.pending == 0


async def test_pacing_spreads_a_burst(sandbox: TestClient[Any, Any], ilert: IlertClient) -> None:
    """With 60 events/min per key, three events of one key reach ilert about a second apart
    (as the sandbox's receive times show)."""
    owner, deliverer = Owner(), engine(ilert, per_key=60)
    for n in range(3):
        deliverer.submit(job(owner, "k", "a", n, lane=None))
    assert await deliverer.wait_idle(10)
    response = await sandbox.get("/sandbox/requests")
    body = await response.json()
    times = sorted(datetime.fromisoformat(r["time"]).timestamp()
                   for r in (body["requests"] if isinstance(body, dict) else body))
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(times) == 3 and all(gap >= 0.9 for gap in gaps), gaps


async def test_an_internal_error_dead_letters_the_job_and_the_lane_goes_on(
        sandbox: TestClient[Any, Any], ilert: IlertClient) -> None:
    """An unexpected exception while handling one job ends it as a dead letter, not the lane."""

    class Failing(Owner):
        def attempted(self, job: Job, result: Result, delay: float) -> None:
            raise RuntimeError("boom")

    await fault(sandbox, status=503, count=1)
    owner, deliverer = Failing(), engine(ilert)
    deliverer.submit(job(owner, "k", "a", 0))
    deliverer.submit(job(owner, "k", "a", 1))
    assert await deliverer.wait_idle(10)
    assert owner.ended["k/a/0"] == (Verdict.DEAD_LETTER, None, "internal_error")
    assert owner.ended["k/a/1"][0] is Verdict.DELIVERED


async def test_a_newer_heartbeat_ping_supersedes_the_queued_ones(
        sandbox: TestClient[Any, Any], ilert: IlertClient) -> None:
    """Ten pings of one key queued behind a slow one: the newest is sent, eight end superseded."""
    await fault(sandbox, latency_ms=300, count=1)
    owner, deliverer = Owner(), engine(ilert)
    for n in range(10):
        deliverer.submit(Job(owner=owner, source="test", lane=("heartbeat", "hb"),
                             integration_key="il1hbt-key", origin=f"ping{n}"))
    assert await deliverer.wait_idle(10)
    verdicts = [owner.ended[f"ping{n}"][0] for n in range(10)]
    assert verdicts == [Verdict.DELIVERED] + [Verdict.SUPERSEDED] * 8 + [Verdict.DELIVERED]
    response = await sandbox.get("/sandbox/heartbeats")
    assert [h["count"] for h in await response.json()] == [2]


async def test_an_alert_past_its_expiry_is_dead_lettered_without_a_request(
        sandbox: TestClient[Any, Any], ilert: IlertClient) -> None:
    """A job whose expires_at has passed ends as a dead letter "stale"; ilert never sees it."""
    owner, deliverer = Owner(), engine(ilert)
    stale = job(owner, "k", "a", 0)
    stale.expires_at = time.time() - 1
    deliverer.submit(stale)
    deliverer.submit(job(owner, "k", "b", 1, lane="other"))
    assert await deliverer.wait_idle(10)
    assert owner.ended["k/a/0"] == (Verdict.DEAD_LETTER, None, "stale")
    assert await summaries(sandbox, "k") == ["1"]


async def test_an_alert_that_expires_while_its_key_is_blocked_is_not_sent_late(
        sandbox: TestClient[Any, Any], ilert: IlertClient) -> None:
    """An event waiting out a 429 block past its expires_at is dead-lettered when the block
    ends, without a request: a page hours late is worse than none."""
    await fault(sandbox, status=429, integration_key="k", count=1, retry_after="1")
    owner, deliverer = Owner(), engine(ilert)
    first = job(owner, "k", "a", 0)
    deliverer.submit(first)
    await until(lambda: owner.attempts == [("k/a/0", 429)], "the 429")
    later = job(owner, "k", "b", 1, lane="other")
    later.expires_at = time.time() + 0.3  # expires during the one-second block
    deliverer.submit(later)
    assert await deliverer.wait_idle(10)
    assert owner.ended["k/b/1"] == (Verdict.DEAD_LETTER, None, "stale")
    assert await summaries(sandbox, "k") == ["0"]


def lane_tasks() -> int:
    """The engine's lane tasks alive (the server's own tasks aside)."""
    return sum(1 for task in asyncio.all_tasks()
               if getattr(task.get_coro(), "__qualname__", "").startswith("Deliverer."))


@dataclass
class TaskOwner(Owner):
    """Also records which task ended each job."""

    tasks: dict[str, asyncio.Task[Any] | None] = field(default_factory=dict)

    async def finished(self, job: Job, verdict: Verdict, result: Result | None,
                       reason: str) -> None:
        self.tasks[job.origin] = asyncio.current_task()
        await super().finished(job, verdict, result, reason)


async def test_a_new_lane_runs_on_an_idle_task_and_idle_tasks_are_bounded(
        sandbox: TestClient[Any, Any], ilert: IlertClient) -> None:
    """One alert after another, each of a new key or of none, run on one task (issue 27: not
    one new task per event); after a burst of 20 lanes at once, at most max_in_flight tasks
    stay waiting, and stop() ends them."""
    owner, deliverer = TaskOwner(), engine(ilert, max_in_flight=4)
    for n in range(10):
        deliverer.submit(job(owner, "k", f"a{n}", n, lane=f"a{n}" if n % 2 else None))
        assert await deliverer.wait_idle(10)
    assert len(set(owner.tasks.values())) == 1
    await fault(sandbox, latency_ms=100, count=20)
    for n in range(20):
        deliverer.submit(job(owner, "k", f"b{n}", n, lane=f"b{n}"))
    assert await deliverer.wait_idle(10)
    assert all(verdict == (Verdict.DELIVERED, 202, "") for verdict in owner.ended.values())
    assert len(owner.ended) == 30 and len(set(owner.tasks.values())) == 20
    await until(lambda: lane_tasks() <= 4, "the surplus tasks ending")
    assert lane_tasks() == 4
    assert await deliverer.stop(1)
    assert lane_tasks() == 0


async def test_cancelled_as_a_lane_is_handed_to_an_idle_task_its_jobs_are_abandoned(
        sandbox: TestClient[Any, Any], ilert: IlertClient) -> None:
    """The moment between handing a new lane to an idle task and that task running it: every
    task cancelled then (as asyncio.run does at exit) leaves the lane's jobs abandoned, to be
    delivered again, not counted as pending forever."""
    owner, deliverer = Owner(), engine(ilert)
    deliverer.submit(job(owner, "k", "a", 0, lane="a"))
    assert await deliverer.wait_idle(10)
    deliverer.submit(job(owner, "k", "b", 1, lane="b"))
    deliverer.submit(job(owner, "k", "b", 2, lane="b"))
    others = asyncio.all_tasks() - {asyncio.current_task()}
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
    assert owner.abandoned_jobs == ["k/b/1", "k/b/2"] and deliverer.pending == 0
    assert await summaries(sandbox, "k") == ["0"]
