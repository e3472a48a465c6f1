"""Buffer mode's queue-file writes: retried, reported together, bounded at shutdown."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

import pytest

from ilagent.errors import SpoolUnavailable
from ilagent.mqtt.writes import QueueWrites


class Disk:
    """A queue file that refuses writes while ``full``."""

    def __init__(self) -> None:
        self.full = True
        self.attempts = 0

    async def write(self) -> None:
        self.attempts += 1
        if self.full:
            raise sqlite3.OperationalError("database or disk is full")


async def test_failing_writes_are_retried_and_reported_together(
        caplog: pytest.LogCaptureFixture) -> None:
    """50 messages fail for a while: one ERROR line (not one per attempt per message), every
    message acknowledged once the file takes writes again, and one line saying so."""
    caplog.set_level(logging.WARNING, "ilagent.mqtt.writes")
    disk, acknowledged = Disk(), []
    writes = QueueWrites(retry_delay=0.01, report_interval=60)
    for n in range(50):
        writes.start(disk.write, then=lambda n=n: acknowledged.append(n))
    while disk.attempts < 500:
        await asyncio.sleep(0.01)
    assert acknowledged == []
    disk.full = False
    assert await writes.drain(10) == 0
    assert sorted(acknowledged) == list(range(50))
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "(database or disk is full): 50 MQTT message(s) wait" in errors[0].getMessage()
    [again] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "takes writes again" in again.getMessage()


async def test_drain_cancels_what_still_fails_at_the_deadline(
        caplog: pytest.LogCaptureFixture) -> None:
    """At shutdown a write that keeps failing gets the time left, then is cancelled: its
    message is never acknowledged, and one ERROR line says how many were not queued."""
    caplog.set_level(logging.ERROR, "ilagent.mqtt.writes")
    disk, acknowledged = Disk(), []
    writes = QueueWrites(retry_delay=0.01, report_interval=60)
    for n in range(3):
        writes.start(disk.write, then=lambda n=n: acknowledged.append(n))
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await writes.drain(0.2) == 3
    assert 0.2 <= loop.time() - started < 1.0
    assert acknowledged == [] and len(writes) == 0
    [line] = [r.getMessage() for r in caplog.records if "shutdown" in r.getMessage()]
    assert line.startswith("shutdown: 3 MQTT message(s) could not be queued (database or disk "
                           "is full)")
    assert "the broker sends them again" in line


async def test_a_kafka_spool_that_does_not_confirm_is_retried_until_it_does() -> None:
    """SpoolUnavailable (the brokers did not acknowledge in time) is retried like a full disk:
    the message is acknowledged only once a write was confirmed."""
    attempts, acknowledged = [0], []

    async def put() -> None:
        attempts[0] += 1
        if attempts[0] < 3:
            raise SpoolUnavailable("the Kafka spool did not confirm the event", retry_after=1)

    writes = QueueWrites(retry_delay=0.01, report_interval=60)
    writes.start(put, then=lambda: acknowledged.append(1))
    assert await writes.drain(10) == 0
    assert attempts[0] == 3 and acknowledged == [1]
