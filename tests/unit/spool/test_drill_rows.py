"""Rows of kind ``drill`` (a fire drill posted to the intake): the worker hands them to the
drills and deletes them, never sends them; a daemon without drills finishes them unsent."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp.test_utils import TestClient

from ilagent.config import RetryPolicy
from ilagent.delivery.engine import Deliverer
from ilagent.delivery.pacing import Pacer
from ilagent.drills.events import resolve_event
from ilagent.ilert import IlertClient
from ilagent.mapping.reading import Reading
from ilagent.metrics import Metrics
from ilagent.records import RecordKind
from ilagent.spool.db import QueuedEvent
from ilagent.spool.rows import Ending, read_row
from ilagent.spool.store import QueueStore
from ilagent.spool.worker import SpoolWorker

KEY = "il1apiDRILLROWS001"


class Inbox:
    """Records what the worker hands over, as the drill desk would receive it."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []

    def arrived(self, source: str, drill_id: str, reading: Reading) -> None:
        raise AssertionError("rows come through queued()")

    def queued(self, path: str, text: str) -> None:
        self.rows.append((path, text))


async def until_empty(store: QueueStore) -> None:
    deadline = time.monotonic() + 10
    while (await store.stats()).depth:
        assert time.monotonic() < deadline, "the drill row stayed in the queue"
        await asyncio.sleep(0.02)


async def run_worker(store: QueueStore, ilert: IlertClient, inbox: Inbox | None,
                     metrics: Metrics) -> None:
    engine = Deliverer(client=ilert, policy=RetryPolicy(), pacer=Pacer(per_key=0, total=0),
                       metrics=metrics)
    worker = SpoolWorker(store=store, deliverer=engine, metrics=metrics, refresh_interval=0.1)
    worker.drills = inbox
    worker.start()
    try:
        await until_empty(store)
    finally:
        worker.stop_loading()
        await engine.stop(1)
        await worker.close()


async def drill_row(store: QueueStore) -> str:
    text = json.dumps(resolve_event(KEY, source="http", drill_id="d42"))
    await store.enqueue(integration_key=KEY, path="/events", event=text, kind=RecordKind.DRILL)
    return text


async def test_a_drill_row_goes_to_the_drills_and_is_deleted_unsent(
        sandbox: TestClient[Any, Any], store: QueueStore, ilert: IlertClient) -> None:
    """The drills get the row's path and event; nothing reaches ilert; the row is gone."""
    text = await drill_row(store)
    inbox, metrics = Inbox(), Metrics()
    await run_worker(store, ilert, inbox, metrics)
    assert inbox.rows == [("/events", text)]
    assert await (await sandbox.get("/sandbox/requests")).json() == []
    assert (await store.stats()).dead_letters == 0


async def test_without_drills_a_drill_row_is_counted_and_finished_unsent(
        sandbox: TestClient[Any, Any], store: QueueStore, ilert: IlertClient) -> None:
    """A daemon running no drills (the row is from before a restart): counted, deleted."""
    await drill_row(store)
    metrics = Metrics()
    await run_worker(store, ilert, None, metrics)
    assert await (await sandbox.get("/sandbox/requests")).json() == []
    assert metrics.registry.get_sample_value("ilagent_drill_unknown_messages_total",
                                             {"source": "http"}) == 1


def test_read_row_never_makes_a_delivery_of_a_drill_row() -> None:
    """Whoever reads a drill row by its kind (not the worker's hand-over) gets an ending."""
    row = QueuedEvent(id=1, integration_key=KEY, path="/events", event="{}", received_at=0.0,
                      attempts=0, next_attempt_at=0.0, last_error="", kind=RecordKind.DRILL)
    assert read_row(row, convert=None) == Ending(None, "a fire drill's event")
