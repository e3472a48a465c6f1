"""Rows say what they hold: the worker delivers each by its kind, and `queue retry` of any dead
letter gives a row it can deliver or dead-letter again, never one retried for ever."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from helpers import eventually
from ilagent.cli import build_parser
from ilagent.commands.daemon import daemon_config
from ilagent.config import RetryPolicy
from ilagent.delivery.engine import Deliverer
from ilagent.delivery.pacing import Pacer
from ilagent.ilert import IlertClient
from ilagent.metrics import Metrics
from ilagent.mqtt.bridge import MqttBridge
from ilagent.records import RecordKind
from ilagent.spool.db import DeadLetter, QueueDB
from ilagent.spool.legacy import Convert
from ilagent.spool.store import QueueStore
from ilagent.spool.worker import SpoolWorker

KEY = "il1apiKINDS00000001"
TOPIC = "plant/hall1/alarms"


class Running:
    """A SpoolWorker and its engine on the test's queue file, stopped at the end."""

    def __init__(self, store: QueueStore, ilert: IlertClient) -> None:
        self.metrics = Metrics()
        self.engine = Deliverer(client=ilert, policy=RetryPolicy(initial_delay=0.02,
                                                                  max_delay=0.05),
                                pacer=Pacer(per_key=0, total=0), metrics=self.metrics,
                                max_in_flight=8)
        self.spool = SpoolWorker(store=store, deliverer=self.engine, metrics=self.metrics,
                                 refresh_interval=0.1)

    async def stop(self) -> None:
        self.spool.stop_loading()
        await self.engine.stop(1)
        await self.spool.close()


@pytest.fixture
async def start(store: QueueStore, ilert: IlertClient) -> AsyncIterator[
        Callable[..., Running]]:
    """Start a worker (``convert``: the MQTT converter it is handed, if any)."""
    running: list[Running] = []

    def make(convert: Convert | None = None) -> Running:
        worker = Running(store, ilert)
        worker.spool.start(convert_mqtt=convert)
        running.append(worker)
        return worker

    yield make
    for worker in running:
        await worker.stop()


def dead_letters(tmp_path: Path) -> dict[int, DeadLetter]:
    db = QueueDB(str(tmp_path / "q.db3"), create=False, read_only=True)
    try:
        return {letter.id: letter for letter in db.dead_letters(limit=100)}
    finally:
        db.close()


def retry(tmp_path: Path, *ids: int) -> None:
    """What `ilagent queue retry ID…` does, on its own connection."""
    db = QueueDB(str(tmp_path / "q.db3"), create=False)
    try:
        with db.transaction():
            assert db.retry(ids) == len(ids)
    finally:
        db.close()


async def mqtt_dead_letter(store: QueueStore, payload: dict[str, Any], topic: str = TOPIC,
                           reason: str = "unrouted") -> int:
    """An MQTT message kept as a dead letter, written as the MQTT bridge writes it."""
    return await store.add_dead_letter(integration_key="", path=f"mqtt:{topic}",
                                       event=json.dumps(payload), reason=reason,
                                       detail=f"{topic} matches no topic option")


def mqtt_converter(*argv: str) -> Convert:
    """The converter of a daemon started with these MQTT options (the real MQTT bridge's)."""
    config = daemon_config(build_parser().parse_args(
        ["daemon", "-m", "127.0.0.1", "--mqtt_qos", "1", *argv]))
    assert config.mqtt is not None
    bridge = MqttBridge(settings=config.mqtt, rules=config.rules, policy_rules=config.policy,
                        deliverer=None, metrics=Metrics())  # type: ignore[arg-type]
    return bridge.convert_legacy


async def requests(sandbox: TestClient[Any, Any]) -> list[dict[str, Any]]:
    response = await sandbox.get("/sandbox/requests")
    return list(await response.json())


async def test_a_retried_mqtt_dead_letter_without_mqtt_is_a_dead_letter_again(
    sandbox: TestClient[Any, Any], store: QueueStore, tmp_path: Path,
    start: Callable[..., Running],
) -> None:
    """An MQTT message retried into a daemon that runs no MQTT becomes a dead letter again
    (reason no_mqtt, saying what to do) at once: nothing is sent, nothing retried for ever."""
    row_id = await mqtt_dead_letter(store, {"integrationKey": KEY, "eventType": "ALERT",
                                            "summary": "door open"})
    retry(tmp_path, row_id)
    start()

    async def dead_again() -> DeadLetter | None:
        return dead_letters(tmp_path).get(row_id)

    letter = await eventually(dead_again, what="the row to be a dead letter again")
    assert (letter.reason, letter.kind, letter.path) == ("no_mqtt", "mqtt", f"mqtt:{TOPIC}")
    assert "MQTT options" in letter.detail
    assert (await store.stats()).depth == 0
    assert await requests(sandbox) == []


async def test_a_retried_mqtt_dead_letter_is_mapped_with_the_daemons_options(
    sandbox: TestClient[Any, Any], store: QueueStore, tmp_path: Path,
    start: Callable[..., Running],
) -> None:
    """MQTT dead letters retried into a daemon with MQTT options are read as if received now:
    a message its topics now route is delivered, a filtered one leaves the queue, one still
    unrouted is a dead letter again with that reason."""
    good = await mqtt_dead_letter(store, {"integrationKey": KEY, "eventType": "ALERT",
                                          "summary": "door open", "type": "ALARM"})
    noise = await mqtt_dead_letter(store, {"integrationKey": KEY, "eventType": "ALERT",
                                           "summary": "noise", "type": "INFO"})
    lost = await mqtt_dead_letter(store, {"integrationKey": KEY, "eventType": "ALERT",
                                          "summary": "elsewhere"}, topic="other/place")
    retry(tmp_path, good, noise, lost)
    start(mqtt_converter("-e", "plant/#", "--filter_key", "type", "--filter_val", "ALARM"))

    async def settled() -> bool:
        return (await store.stats()).depth == 0 and lost in dead_letters(tmp_path)

    await eventually(settled, what="every retried row to settle")
    [sent] = [r for r in await requests(sandbox) if r["status"] == 202]
    assert sent["path"].startswith("/api/v1/events/mqtt/") and sent["body"]["summary"] == (
        "door open")
    assert list(dead_letters(tmp_path)) == [lost]
    assert dead_letters(tmp_path)[lost].reason == "unrouted"


async def test_each_row_is_delivered_by_its_kind_not_its_path(
    sandbox: TestClient[Any, Any], store: QueueStore, tmp_path: Path,
    start: Callable[..., Running],
) -> None:
    """A heartbeat row is a ping, a policy row an update (refused here: no policy sync), an
    event row is posted; an unknown kind and corrupt JSON are dead letters with their reason."""
    beat = await store.enqueue(integration_key="ih2:900:acme:kinds:0001", path="",
                               event="", kind=RecordKind.HEARTBEAT)
    policy = await store.enqueue(integration_key="policy", path="/somewhere",
                                 event=json.dumps({"email": "a@b.c", "routingKey": "rk",
                                                   "level": 0}), kind=RecordKind.POLICY)
    event = await store.enqueue(integration_key=KEY, path=f"/v1/events/http/{KEY}",
                                event=json.dumps({"integrationKey": KEY, "eventType": "ALERT",
                                                  "summary": "s"}), kind=RecordKind.EVENT)
    future = await store.enqueue(integration_key=KEY, path="/events", event="{}",
                                 kind="telegram")  # type: ignore[arg-type]
    corrupt = await store.enqueue(integration_key=KEY, path="/events", event="{not json",
                                  kind=RecordKind.EVENT)
    start()

    async def settled() -> bool:
        return (await store.stats()).depth == 0 and len(dead_letters(tmp_path)) == 3

    await eventually(settled, what="every row to settle")
    letters = dead_letters(tmp_path)
    assert {row_id: letters[row_id].reason for row_id in letters} == {
        policy: "no_api_key", future: "unknown_kind", corrupt: "corrupt"}
    assert letters[future].kind == "telegram"
    paths = [(r["method"], r["path"].split("/")[2]) for r in await requests(sandbox)]
    assert sorted(paths) == [("HEAD", "pings"), ("POST", "v1")]
    assert beat not in letters and event not in letters


async def test_a_mapping_that_fails_ends_its_row_not_the_loading(
    sandbox: TestClient[Any, Any], store: QueueStore, tmp_path: Path,
    start: Callable[..., Running],
) -> None:
    """A converter that raises dead-letters its MQTT row as internal_error; the rows after it
    are still delivered."""
    broken = await mqtt_dead_letter(store, {"summary": "boom"})
    retry(tmp_path, broken)
    await store.enqueue(integration_key=KEY, path=f"/v1/events/http/{KEY}", kind=RecordKind.EVENT,
                        event=json.dumps({"integrationKey": KEY, "eventType": "ALERT",
                                          "summary": "after it"}))

    def convert(topic: str, payload: bytes) -> Any:
        raise RuntimeError("a bug in the mapping")

    start(convert)

    async def settled() -> bool:
        return (await store.stats()).depth == 0 and broken in dead_letters(tmp_path)

    await eventually(settled, what="both rows to settle")
    assert dead_letters(tmp_path)[broken].reason == "internal_error"
    assert [r["body"]["summary"] for r in await requests(sandbox)] == ["after it"]
