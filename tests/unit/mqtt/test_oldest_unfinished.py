"""The MQTT bridge without a broker: what the head-of-line watch sees of its messages."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp.test_utils import TestClient

from ilagent.config import MappingRules, MqttSettings, RetryPolicy
from ilagent.delivery.engine import Deliverer
from ilagent.delivery.pacing import Pacer
from ilagent.ilert import IlertClient
from ilagent.metrics import Metrics
from ilagent.mqtt.bridge import MqttBridge
from ilagent.mqtt.connection import Received

KEY = "il1api-oldest-unfinished"


def message(mid: int, summary: str) -> Received:
    event = {"integrationKey": KEY, "eventType": "ALERT", "alertKey": "a", "summary": summary}
    return Received(topic="plant/boiler", payload=json.dumps(event).encode(), qos=1, mid=mid,
                    retain=False)


async def until(check: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_oldest_unfinished_is_the_first_message_waiting_and_its_delivery(
        sandbox: TestClient[Any, Any], ilert: IlertClient) -> None:
    """While ilert holds the oldest message's event, the watch gets that message's receive
    time and the job delivering it; delivered but not yet acknowledged (no connection), it
    still waits, without a job; after the connection is gone it waits for the broker only."""
    metrics = Metrics()
    deliverer = Deliverer(client=ilert, policy=RetryPolicy(initial_delay=0.05, max_delay=0.2),
                          pacer=Pacer(per_key=0, total=0), metrics=metrics, max_in_flight=8)
    bridge = MqttBridge(settings=MqttSettings(host="127.0.0.1", client_id="c", qos=1,
                                              event_topics=("plant/#",)),
                        rules=MappingRules(), deliverer=deliverer, metrics=metrics)
    bridge._connected(False)  # the CONNACK, as the connection hands it over
    assert bridge.oldest_unfinished() is None
    response = await sandbox.post("/sandbox/faults",
                                  json={"latency_ms": 300, "integration_key": KEY})
    assert response.status in (200, 201)
    before = time.monotonic()
    bridge._received(message(1, "first"))
    bridge._received(message(2, "second"))  # behind the first, in its alert's lane
    oldest = bridge.oldest_unfinished()
    assert oldest is not None
    received, job = oldest
    assert before <= received <= time.monotonic()
    assert job is not None and job.body is not None and b'"first"' in job.body
    await until(lambda: deliverer.pending == 0, "both delivered")
    assert bridge.oldest_unfinished() == (received, None)  # its PUBACK was refused
    bridge._disconnected()
    assert bridge.oldest_unfinished() is None  # done; acknowledged when the broker resends
    assert bridge.unacknowledged == 2
    await deliverer.stop(1)
