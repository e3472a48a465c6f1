"""`ilagent queue retry` beside a running worker: a retried row comes back under its old, lower
id, and the worker must read it even when the change is noticed while a read is on its way."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from helpers import eventually
from ilagent.config import RetryPolicy
from ilagent.delivery.engine import Deliverer
from ilagent.delivery.pacing import Pacer
from ilagent.ilert import IlertClient
from ilagent.metrics import Metrics
from ilagent.spool.db import QueueDB
from ilagent.spool.store import QueueStore
from ilagent.spool.worker import SpoolWorker

KEY = "il1apiOUTSIDE000001"


def event(summary: str, alert: str) -> str:
    return json.dumps({"integrationKey": KEY, "eventType": "ALERT", "summary": summary,
                       "alertKey": alert})


async def test_a_retry_noticed_while_a_read_is_on_its_way_is_still_delivered(
    sandbox: TestClient[Any, Any], store: QueueStore, ilert: IlertClient, tmp_path: Path
) -> None:
    """The worker notices `queue retry` (it acknowledges the change) while a forward read for a
    new row waits behind that acknowledgement: the retried row, whose id is below the read's
    cursor, is still delivered within seconds, not stranded until a restart."""
    path = str(tmp_path / "q.db3")
    retried = await store.enqueue(integration_key=KEY, path="/events", event=event("retried", "a"))
    await store.enqueue(integration_key=KEY, path="/events", event=event("first", "b"))
    outside = QueueDB(path, create=False)  # what `ilagent queue` opens
    with outside.transaction():
        outside.dead_letter(retried, reason="rejected", status=400, detail="", attempts=1,
                            now=time.time())
    engine = Deliverer(client=ilert, policy=RetryPolicy(initial_delay=0.02, max_delay=0.05),
                       pacer=Pacer(per_key=0, total=0), metrics=Metrics(), max_in_flight=8)
    # no periodic check: the test runs the check for outside changes itself, at its moment
    worker = SpoolWorker(store=store, deliverer=engine, metrics=Metrics(), refresh_interval=3600)
    worker.start()

    async def summaries() -> list[str]:
        response = await sandbox.get("/sandbox/events")
        return [e["body"]["summary"] for e in await response.json()]

    async def drained() -> bool:
        return await summaries() == ["first"] and (await store.stats()).depth == 0

    try:
        await eventually(drained, what="the first row delivered and deleted")
        with outside.transaction():  # `ilagent queue retry <id>`
            outside.retry([retried])
        # another writer holds the file while a new event is being committed
        writer = sqlite3.connect(path, isolation_level=None, timeout=5)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO queue (integration_key, path, event, received_at) "
                       "VALUES (?, ?, ?, ?)", (KEY, "/events", event("late", "c"), time.time()))
        checking = asyncio.create_task(worker._outside_changes())

        async def acknowledgement_waits() -> bool:
            # the worker's acknowledgement is the only write: once a read queued behind it
            # stays unanswered, the acknowledgement waits for the writer's lock
            read = store.stats()
            done, _ = await asyncio.wait({read}, timeout=0.2)
            return not done

        await eventually(acknowledgement_waits, what="the acknowledgement to wait for the lock")
        worker.notify()  # the new event: a forward read from the cursor, behind the lock too
        for _ in range(50):  # let the load loop wake and send its read (no I/O needed for that)
            await asyncio.sleep(0)
        writer.execute("COMMIT")
        writer.close()
        await checking

        async def all_three() -> bool:
            return sorted(await summaries()) == ["first", "late", "retried"]

        await eventually(all_three, what="the retried row and the new one delivered")
    finally:
        worker.stop_loading()
        await engine.stop(1)
        await worker.close()
        outside.close()
