"""The daemon's own heartbeat (``-b``): pinged as soon as every part is ready, then every
interval while it stays ready; never more often, however readiness flaps."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from ilagent.ilert import Outcome, Result
from ilagent.metrics import Metrics
from ilagent.web.probes import Probes, ping_while_ready

INTERVAL = 0.3
RECHECK = 0.01


class Heartbeat:
    """Stands in for ilert's client: answers every ping 202 and notes when it came."""

    def __init__(self) -> None:
        self.pings: list[float] = []

    async def ping_heartbeat(self, key: str) -> Result:
        self.pings.append(asyncio.get_running_loop().time())
        return Result(Outcome.DELIVERED, 202)


class Part:
    """A part of the daemon whose readiness the test sets; counts how often it was asked."""

    def __init__(self) -> None:
        self.ready = False
        self.looks = 0

    def __call__(self) -> dict[str, Any] | None:
        self.looks += 1
        return None if self.ready else {"error": "not assigned yet"}


async def until(condition: Any, timeout: float = 5.0) -> None:
    """Wait for ``condition`` on the running loop, a deadline instead of a fixed sleep."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(RECHECK / 2)


async def test_the_first_ping_follows_readiness_and_a_flap_brings_no_extra_ping(
        caplog: pytest.LogCaptureFixture) -> None:
    """Not ready: no ping, and one log line however often readiness is looked at. Ready: a
    ping within a look, not an interval later. Not ready and ready again at once: the next
    ping still comes an interval after the first, and then one every interval."""
    caplog.set_level(logging.INFO, logger="ilagent.web.probes")
    kafka, client, stop = Part(), Heartbeat(), asyncio.Event()
    task = asyncio.create_task(ping_while_ready(
        "il1hbt0000000001", client=client, probes=Probes(parts={"kafka": kafka}),  # type: ignore[arg-type]
        metrics=Metrics(), interval=INTERVAL, stop=stop, recheck=RECHECK))
    await until(lambda: kafka.looks >= 10)
    assert client.pings == []
    waiting = [r.getMessage() for r in caplog.records if "not pinging" in r.getMessage()]
    assert waiting == ["not pinging heartbeat ************0001: not ready (kafka)"]

    kafka.ready = True
    ready_at = asyncio.get_running_loop().time()
    await until(lambda: len(client.pings) == 1)
    assert client.pings[0] - ready_at < INTERVAL / 2  # within a look, not an interval

    kafka.ready = False  # a flap, right after the ping
    looks = kafka.looks
    await until(lambda: kafka.looks >= looks + 3)
    kafka.ready = True
    await until(lambda: len(client.pings) == 3)
    assert client.pings[1] - client.pings[0] >= INTERVAL
    assert client.pings[2] - client.pings[1] >= INTERVAL
    stop.set()
    await asyncio.wait_for(task, 5)
    waiting = [r.getMessage() for r in caplog.records if "not pinging" in r.getMessage()]
    assert len(waiting) == 2  # at the start and at the flap


async def test_a_stop_while_waiting_for_readiness_ends_it_without_a_ping() -> None:
    kafka, client, stop = Part(), Heartbeat(), asyncio.Event()
    task = asyncio.create_task(ping_while_ready(
        "il1hbt0000000001", client=client, probes=Probes(parts={"kafka": kafka}),  # type: ignore[arg-type]
        metrics=Metrics(), interval=INTERVAL, stop=stop, recheck=RECHECK))
    await until(lambda: kafka.looks >= 2)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert client.pings == []
