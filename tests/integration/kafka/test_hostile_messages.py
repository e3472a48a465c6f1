"""Hostile Kafka messages never stall a lane or a partition; heartbeat topics are paced."""

from __future__ import annotations

import json
import time
from typing import Any

from helpers import Sandbox, committed, create_topic, produce, unique, wait_until


def assigned(daemon: Any, topic: str) -> bool:
    return f"assigned {topic}[" in daemon.output()


def event(key: str, summary: str, **more: Any) -> bytes:
    return json.dumps({"integrationKey": key, "eventType": "ALERT", "alertKey": "A",
                       "summary": summary, **more}).encode()


def poisons(key: str) -> list[bytes]:
    """Messages that each must end as a dead letter without holding anything back."""
    deep = b"[" * 300 + b"]" * 300  # parses (orjson reads 1,024 levels) but cannot be re-encoded
    head = b'{"integrationKey":"' + key.encode() + b'","eventType":"ALERT","alertKey":"A",'
    return [
        head + b'"summary":"deep","x":' + deep + b"}",
        head + b'"summary":"deeper","x":' + b"[" * 1000 + b"]" * 1000 + b"}",
        head + b'"summary":"lone \\ud800 surrogate"}',
        b"\xff\xfe not UTF-8 at all",
        head + b'"summary":"bad type","images":"not a list"}',
        b"[" * 5000 + b"]" * 5000,
        b'{"integrationKey": 5}',
    ]


def test_after_every_poison_the_next_event_of_its_alert_is_delivered(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """Each poison is dead-lettered at once; the good event after it, same alert, is delivered,
    in order, and the committed offset reaches the end of the partition."""
    topic = create_topic(kafka_bootstrap, unique("poison"))
    group = unique("g")
    key = unique("il1api")
    daemon = run_ilagent("daemon", "-v", "-v", "--kafka_brokers", kafka_bootstrap,
                         "--kafka_group_id", group, "-e", topic, "--forward_message_payload",
                         "--rate_limit_per_key", "0", "--rate_limit_total", "0")
    wait_until(lambda: assigned(daemon, topic), timeout=60, what="partition assignment")
    messages: list[bytes] = []
    for n, poison in enumerate(poisons(key)):
        messages += [poison, event(key, f"good{n}")]
    produce(kafka_bootstrap, topic, messages, key=b"same-key")
    wait_until(lambda: committed(kafka_bootstrap, group, topic) == [len(messages)], timeout=30,
               what="the committed offset at the end of the partition")
    summaries = [b["summary"] for b in sandbox.bodies(key)]
    assert summaries == [f"good{n}" for n in range(len(poisons(key)))]
    output = daemon.output()
    assert output.count("dead letter") >= len(poisons(key)), output[-3000:]
    assert "unserialisable" in output and "Traceback" not in output
    assert daemon.alive()


def test_heartbeat_pings_are_paced_and_coalesced(kafka_bootstrap: str, sandbox: Sandbox,
                                                 run_ilagent: Any) -> None:
    """30 heartbeat messages of one key: at most 5 pings a minute reach ilert, and the topic's
    committed offset reaches its end within 30 s (older queued pings are made needless)."""
    topic = create_topic(kafka_bootstrap, unique("beats"))
    group = unique("g")
    key = unique("il1hbt")
    daemon = run_ilagent("daemon", "-v", "-v", "--kafka_brokers", kafka_bootstrap,
                         "--kafka_group_id", group, "-r", topic)
    wait_until(lambda: assigned(daemon, topic), timeout=60, what="partition assignment")
    started = time.monotonic()
    produce(kafka_bootstrap, topic, [{"integrationKey": key}] * 30)
    wait_until(lambda: committed(kafka_bootstrap, group, topic) == [30], timeout=30,
               what="the committed offset at the end of the heartbeat topic")
    elapsed = time.monotonic() - started
    pings = sum(h["count"] for h in sandbox.heartbeats())
    print(f"\n[report] 30 heartbeat messages: {pings} pings, all committed after {elapsed:.1f} s")
    assert 1 <= pings <= 5
