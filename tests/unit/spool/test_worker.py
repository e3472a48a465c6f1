"""The queue worker (SpoolWorker) with a real SQLite file and the sandbox app as ilert, in process."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp.test_utils import TestClient

from ilagent.config import RetryPolicy
from ilagent.delivery.engine import Deliverer, Job
from ilagent.delivery.pacing import Pacer
from ilagent.ilert import IlertClient, Outcome, Result
from ilagent.metrics import Metrics
from ilagent.spool.db import QueueDB
from ilagent.spool.store import QueueStore
from ilagent.spool.worker import SpoolWorker

FAST = RetryPolicy(initial_delay=0.02, max_delay=0.05)
T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T]], *, timeout: float = 10.0, what: str = "condition"
) -> T:
    """Poll an async check until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.02)


class Worker:
    """A SpoolWorker and its engine, stopped at the end of the test."""

    def __init__(
        self,
        store: QueueStore,
        ilert: IlertClient,
        *,
        policy: RetryPolicy = FAST,
        window: int = 1000,
    ) -> None:
        self.engine = Deliverer(
            client=ilert,
            policy=policy,
            pacer=Pacer(per_key=0, total=0),
            metrics=Metrics(),
            max_in_flight=16,
        )
        self.spool = SpoolWorker(
            store=store,
            deliverer=self.engine,
            metrics=Metrics(),
            window=window,
            refresh_interval=0.1,
        )

    async def stop(self) -> None:
        self.spool.stop_loading()
        await self.engine.stop(1)
        await self.spool.close()


@pytest.fixture
async def worker_factory(
    store: QueueStore, ilert: IlertClient
) -> AsyncIterator[Callable[..., Worker]]:
    workers: list[Worker] = []

    def make(**kwargs: Any) -> Worker:
        worker = Worker(store, ilert, **kwargs)
        workers.append(worker)
        worker.spool.start()
        return worker

    yield make
    for worker in workers:
        await worker.stop()


async def put(
    store: QueueStore, key: str, alert: str | None, summary: str, event_type: str = "ALERT"
) -> int:
    event = {"integrationKey": key, "eventType": event_type, "summary": summary}
    if alert is not None:
        event["alertKey"] = alert
    return await store.enqueue(
        integration_key=key, path=f"/v1/events/http/{key}", event=json.dumps(event)
    )


async def summaries(sandbox: TestClient[Any, Any], key: str) -> list[str]:
    response = await sandbox.get("/sandbox/events", params={"integration_key": key})
    body = await response.json()
    events = body["events"] if isinstance(body, dict) else body
    return [e["body"]["summary"] for e in events]


async def fault(sandbox: TestClient[Any, Any], **spec: Any) -> None:
    response = await sandbox.post("/sandbox/faults", json=spec)
    assert response.status in (200, 201)


async def test_rows_are_delivered_in_order_per_alert_and_deleted(
    sandbox: TestClient[Any, Any], store: QueueStore, worker_factory: Callable[..., Worker]
) -> None:
    """Queued rows reach ilert in acceptance order per alert key and then leave the queue."""
    await fault(sandbox, latency_ms=100, count=3)  # slow first answers tempt later ones past
    for n in range(10):
        for alert in ("a", "b", "c"):
            await put(store, "k", alert, f"{alert}#{n}")
    worker = worker_factory()

    async def drained() -> bool:
        return (await store.stats()).depth == 0 and len(await summaries(sandbox, "k")) == 30

    await eventually(drained, what="the queue to drain")
    received = await summaries(sandbox, "k")
    for alert in ("a", "b", "c"):
        assert [s for s in received if s.startswith(alert)] == [f"{alert}#{n}" for n in range(10)]
    assert worker.spool.loaded == 0


async def test_rejected_row_is_dead_lettered_with_status_and_body_excerpt(
    sandbox: TestClient[Any, Any],
    store: QueueStore,
    tmp_path: Path,
    worker_factory: Callable[..., Worker],
) -> None:
    """A 400 from ilert moves the row to dead_letters with reason, status and ilert's answer."""
    row_id = await put(store, "k", "never-opened", "", event_type="RESOLVE")
    await put(store, "k", "never-opened", "after it")
    worker_factory()
    await eventually(lambda: summaries(sandbox, "k"), what="the next event of the lane")
    stats = await eventually(store.stats, what="stats")
    assert (stats.depth, stats.dead_letters) == (0, 1)
    (letter,) = QueueDB(str(tmp_path / "q.db3")).dead_letters(limit=5)
    assert (letter.id, letter.reason, letter.status, letter.attempts) == (
        row_id,
        "rejected",
        400,
        1,
    )
    assert "NO_OPEN_ALERT_WITH_KEY" in letter.detail


async def test_exhausted_row_is_dead_lettered_after_its_retries(
    sandbox: TestClient[Any, Any],
    store: QueueStore,
    tmp_path: Path,
    worker_factory: Callable[..., Worker],
) -> None:
    """With max_retries 2 a row failing with 503 ends in dead_letters after three attempts."""
    await fault(sandbox, status=503, integration_key="down")
    await put(store, "down", "a", "lost cause")
    worker_factory(policy=RetryPolicy(initial_delay=0.01, max_delay=0.02, max_retries=2))

    async def dead() -> int:
        return (await store.stats()).dead_letters

    await eventually(dead, what="the dead letter")
    (letter,) = QueueDB(str(tmp_path / "q.db3")).dead_letters(limit=5)
    assert (letter.reason, letter.status, letter.attempts) == ("retries_exhausted", 503, 3)
    assert "SANDBOX_FAULT" in letter.detail


async def test_window_bounds_the_rows_in_memory(
    sandbox: TestClient[Any, Any], store: QueueStore, worker_factory: Callable[..., Worker]
) -> None:
    """With a window of 10, never more than 10 rows are in memory, and all 60 are delivered."""
    await fault(sandbox, latency_ms=20)
    for n in range(60):
        await put(store, "k", None, f"e{n}")
    worker = worker_factory(window=10)
    most = 0

    async def done() -> bool:
        nonlocal most
        most = max(most, worker.spool.loaded, worker.engine.pending)
        return len(await summaries(sandbox, "k")) == 60

    await eventually(done, timeout=20, what="all 60 events")
    assert 0 < most <= 10
    assert sorted(await summaries(sandbox, "k")) == sorted(f"e{n}" for n in range(60))


async def test_a_row_due_later_holds_back_its_lane_only(
    sandbox: TestClient[Any, Any],
    store: QueueStore,
    tmp_path: Path,
    worker_factory: Callable[..., Worker],
) -> None:
    """A row whose persisted next attempt lies ahead waits, with the rest of its lane."""
    first = await put(store, "k", "x", "x#0")
    await put(store, "k", "x", "x#1")
    await put(store, "k", "y", "y#0")
    due = time.time() + 1.0
    await store.record_attempt(first, attempts=2, next_attempt_at=due, last_error="503")
    worker_factory()
    await eventually(lambda: summaries(sandbox, "k"), what="the other lane")
    assert await summaries(sandbox, "k") == ["y#0"]

    async def all_three() -> list[str]:
        got = await summaries(sandbox, "k")
        return got if len(got) == 3 else []

    assert await eventually(all_three, what="the held lane") == ["y#0", "x#0", "x#1"]
    assert time.time() >= due


async def test_attempted_persists_the_retry_state_and_a_restart_counts_on(
    sandbox: TestClient[Any, Any],
    store: QueueStore,
    tmp_path: Path,
    worker_factory: Callable[..., Worker],
) -> None:
    """The attempted hook stores attempts, next time and error; a reload counts from there."""
    row_id = await put(store, "k", "a", "retried")
    worker = Worker(store, IlertClient(api_url="http://127.0.0.1:9"))
    (row,) = await store.page(after=0, limit=1)
    job = Job(
        owner=worker.spool,
        source="http",
        lane=None,
        integration_key="k",
        body=b"{}",
        context=row,
        attempts=4,
    )
    worker.spool.attempted(job, Result(Outcome.RETRY, 503, "down"), 0.3)
    await worker.spool.close()
    (stored,) = await store.page(after=0, limit=1)
    assert (stored.id, stored.attempts, stored.last_error) == (row_id, 4, "503 down")
    assert time.time() < stored.next_attempt_at <= time.time() + 0.3

    await fault(sandbox, status=503, integration_key="k")
    worker_factory(policy=RetryPolicy(initial_delay=0.01, max_delay=0.02, max_retries=5))

    async def dead() -> int:
        return (await store.stats()).dead_letters

    await eventually(dead, what="the dead letter")
    (letter,) = QueueDB(str(tmp_path / "q.db3")).dead_letters(limit=1)
    assert letter.attempts == 6  # 4 before the restart, then 2 more: retries 5 used up


async def test_stopping_keeps_unfinished_rows_with_their_attempts(
    sandbox: TestClient[Any, Any], store: QueueStore, ilert: IlertClient
) -> None:
    """Rows still failing at shutdown stay queued, with the attempts made so far."""
    await fault(sandbox, status=503)
    await put(store, "k", "a", "stuck")
    worker = Worker(store, ilert)
    worker.spool.start()

    async def retried() -> bool:
        response = await sandbox.get("/sandbox/requests")
        body = await response.json()
        requests = body["requests"] if isinstance(body, dict) else body
        return len(requests) >= 3

    await eventually(retried, what="three failed attempts")
    await worker.stop()
    (row,) = await store.page(after=0, limit=1)
    assert row.attempts >= 3


async def test_a_key_that_cannot_send_never_fills_the_window(
    sandbox: TestClient[Any, Any], store: QueueStore, worker_factory: Callable[..., Worker]
) -> None:
    """100 rows of a rate-limited key, then 10 of another, window 20: the other key's rows are
    read past the blocked ones and delivered; the blocked key's follow once its block ends."""
    await fault(sandbox, status=429, integration_key="busy", retry_after="2", duration_s=2)
    for n in range(100):
        await put(store, "busy", f"a{n}", f"busy{n}")
    for n in range(10):
        await put(store, "other", f"b{n}", f"other{n}")
    worker = worker_factory(window=20)
    most = 0

    async def others_done() -> bool:
        nonlocal most
        most = max(most, worker.spool.loaded)
        return len(await summaries(sandbox, "other")) == 10

    await eventually(others_done, timeout=10, what="the other key's rows")
    assert await summaries(sandbox, "busy") == []  # still blocked meanwhile
    assert 0 < most <= 20

    async def busy_done() -> bool:
        return len(await summaries(sandbox, "busy")) == 100

    await eventually(busy_done, timeout=30, what="the blocked key's rows")
    assert sorted(await summaries(sandbox, "busy")) == sorted(f"busy{n}" for n in range(100))
    assert (await store.stats()).depth == 0


async def test_a_long_lane_is_loaded_piece_by_piece_in_order(
    sandbox: TestClient[Any, Any], store: QueueStore, worker_factory: Callable[..., Worker]
) -> None:
    """150 events of one alert among 20 of others, window 20 (one row per lane in memory):
    every event arrives once, and the long alert's in the order they were accepted."""
    for n in range(150):
        await put(store, "k", "hot", f"hot{n:03}")
        if n % 15 == 0:
            await put(store, "k", f"cold{n}", f"cold{n}")
    for n in range(10):
        await put(store, "k", f"late{n}", f"late{n}")
    worker = worker_factory(window=20)
    most = 0

    async def all_done() -> bool:
        nonlocal most
        most = max(most, worker.spool.loaded)
        return len(await summaries(sandbox, "k")) == 170

    await eventually(all_done, timeout=30, what="all 170 events")
    got = await summaries(sandbox, "k")
    assert [s for s in got if s.startswith("hot")] == [f"hot{n:03}" for n in range(150)]
    assert len(set(got)) == 170 and 0 < most <= 20
