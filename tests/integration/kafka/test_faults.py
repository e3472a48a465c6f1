"""Fault tests of the delivery engine on the real broker: kills, outages, 429s, rebalances, DLQ.

Each is bounded in time. Pacing is off unless a test is about pacing, so that the figures are
about the engine, not about ilert's 50 events/min.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from helpers import (
    FAST,
    Sandbox,
    committed,
    create_topic,
    events_for,
    http,
    metric,
    produce,
    read_all,
    received_by_alert,
    status_or_none,
    unique,
    wait_until,
)


def daemon_args(bootstrap: str, group: str, *topics: str, extra: list[str] | None = None) -> list[str]:
    args = ["daemon", "-v", "-v", "--kafka_brokers", bootstrap, "--kafka_group_id", group,
            "--kafka_offset_reset", "earliest", *FAST]
    for topic in topics:
        args += ["-e", topic]
    return args + (extra or [])


def assigned(daemon: Any) -> bool:
    return "assigned " in daemon.output()


def test_long_outage_keeps_the_group_and_loses_nothing(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """503 for 30 s with max.poll.interval.ms=10 s: no rebalance, process alive, all delivered."""
    import broker

    topic = create_topic(kafka_bootstrap, unique("outage"), partitions=2)
    group, key, port = unique("g"), unique("il1api"), broker.free_port()
    daemon = run_ilagent(*daemon_args(kafka_bootstrap, group, topic, extra=[
        "-p", str(port), "--kafka_config", "max.poll.interval.ms=10000"]))
    wait_until(lambda: status_or_none("GET", f"http://127.0.0.1:{port}/ready") == 204,
               timeout=60, what="ready")
    sandbox.fault(status=503, duration_s=30)
    events = events_for(key, alerts=20, per_alert=10)
    produce(kafka_bootstrap, topic, events, keys=[e["alertKey"] for e in events])
    wait_until(lambda: len({b["summary"] for b in sandbox.bodies(key)}) == 200, timeout=90,
               what="all events after the outage")
    assert daemon.alive()
    assert metric(port, "ilagent_delivery_retries_total") > 0
    assert metric(port, 'ilagent_kafka_rebalances_total{kind="revoke"}') == 0
    assert metric(port, 'ilagent_kafka_rebalances_total{kind="lost"}') == 0
    assert daemon.output().count("assigned ") == 1, "the group rebalanced during the outage"
    for alert, numbers in received_by_alert(sandbox, key).items():
        assert numbers == sorted(numbers), alert
    assert daemon.stop() == 0


def test_429_for_one_key_does_not_slow_the_others(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """One integration key answered 429 forever: the other key's events all flow meanwhile."""
    topic = create_topic(kafka_bootstrap, unique("ratelimited"))
    group, limited, free = unique("g"), unique("il1apilim"), unique("il1apifree")
    sandbox.fault(status=429, integration_key=limited)
    daemon = run_ilagent(*daemon_args(kafka_bootstrap, group, topic))
    wait_until(lambda: assigned(daemon), timeout=60, what="assignment")
    produce(kafka_bootstrap, topic, events_for(limited, alerts=5, per_alert=4)
            + events_for(free, alerts=100, per_alert=3))
    wait_until(lambda: len(sandbox.events(free)) == 300, timeout=20,
               what="the free key's 300 events while the other key is limited")
    assert sandbox.events(limited) == []
    assert sum(r["status"] == 429 for r in sandbox.requests()) >= 1
    sandbox.clear_faults()
    wait_until(lambda: len(sandbox.events(limited)) == 20, timeout=30,
               what="the limited key after the 429s end")
    assert daemon.stop() == 0


def test_broker_down_for_15_seconds(tmp_path: Any, sandbox: Sandbox, run_ilagent: Any) -> None:
    """The broker stops for 15 s and comes back: the daemon recovers by itself, nothing lost."""
    import time

    import broker

    own = broker.start(tmp_path / "kafka")
    try:
        bootstrap = own.bootstrap
        topic = create_topic(bootstrap, unique("brokerdown"))
        group, key = unique("g"), unique("il1api")
        daemon = run_ilagent(*daemon_args(bootstrap, group, topic))
        wait_until(lambda: assigned(daemon), timeout=60, what="assignment")
        produce(bootstrap, topic, events_for(key, alerts=1, per_alert=50))
        wait_until(lambda: len(sandbox.events(key)) >= 50, what="first batch")
        own.stop()
        stopped = time.monotonic()
        wait_until(lambda: time.monotonic() - stopped >= 15, timeout=20, interval=0.5,
                   what="15 s of broker downtime")
        assert daemon.alive()
        own.start_again()
        produce(bootstrap, topic, [{"integrationKey": key, "eventType": "ALERT",
                                    "alertKey": "a0", "summary": f"a0#{n}"}
                                   for n in range(50, 100)])
        wait_until(lambda: len({b["summary"] for b in sandbox.bodies(key)}) == 100, timeout=90,
                   what="events produced after the broker came back")
        wait_until(lambda: committed(bootstrap, group, topic) == [100], timeout=30,
                   what="commits after recovery")
        assert daemon.stop() == 0
    finally:
        own.destroy()


def test_group_members_join_and_leave_under_load(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Two daemons, a third joins and one leaves while events flow: nothing lost, order per key."""
    topic = create_topic(kafka_bootstrap, unique("rebalance"), partitions=6)
    group, key = unique("g"), unique("il1api")
    args = daemon_args(kafka_bootstrap, group, topic)
    sandbox.fault(latency_ms=5)
    first, second = run_ilagent(*args), run_ilagent(*args)
    events = events_for(key, alerts=200, per_alert=15)
    keys = [e["alertKey"] for e in events]
    produce(kafka_bootstrap, topic, events[:1000], keys=keys[:1000])
    wait_until(lambda: len(sandbox.events(key)) >= 300, timeout=60, what="early deliveries")
    third = run_ilagent(*args)
    produce(kafka_bootstrap, topic, events[1000:2000], keys=keys[1000:2000])
    wait_until(lambda: assigned(third), timeout=60, what="the third member's assignment")
    assert first.stop() == 0
    produce(kafka_bootstrap, topic, events[2000:], keys=keys[2000:])
    wait_until(lambda: len({b["summary"] for b in sandbox.bodies(key)}) == 3000, timeout=120,
               what="all 3,000 events")
    wait_until(lambda: sum(committed(kafka_bootstrap, group, topic, 6)) == 3000,
               what="every offset committed")
    by_alert = received_by_alert(sandbox, key)
    for alert, numbers in by_alert.items():
        first_seen = list(dict.fromkeys(numbers))
        assert first_seen == list(range(15)), f"{alert} out of order: {numbers}"
        assert numbers[-1] == 14, alert
    duplicates = sum(len(n) for n in by_alert.values()) - 3000
    with capsys.disabled():
        print(f"\n[report] duplicates across a join and a leave (3,000 events): {duplicates}")
    assert second.stop() == 0 and third.stop() == 0


def test_rejected_message_goes_to_the_dlq_with_reasons(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """A 400 dead-letters that message to --dlq_topic with reason headers; later ones flow."""
    topic = create_topic(kafka_bootstrap, unique("dlqsrc"))
    dlq = create_topic(kafka_bootstrap, unique("dlq"))
    group, key = unique("g"), unique("il1api")
    sandbox.fault(status=400, count=1, integration_key=key)
    daemon = run_ilagent(*daemon_args(kafka_bootstrap, group, topic,
                                      extra=["--dlq_topic", dlq]))
    wait_until(lambda: assigned(daemon), timeout=60, what="assignment")
    poison = {"integrationKey": key, "eventType": "ALERT", "alertKey": "p", "summary": "poison"}
    produce(kafka_bootstrap, topic, [poison, b"{broken json", *events_for(key, 1, 5)],
            key=b"k1")
    wait_until(lambda: len(sandbox.events(key)) == 5, what="the later messages")
    wait_until(lambda: committed(kafka_bootstrap, group, topic) == [7], what="all committed")
    letters = read_all(kafka_bootstrap, dlq, expect=2)
    assert len(letters) == 2
    by_offset = {dict(m.headers())["ilagent.source.offset"]: m for m in letters}
    first = by_offset[b"0"]
    headers = {k: v.decode() for k, v in first.headers()}
    assert first.value() == produce_bytes(poison) and first.key() == b"k1"
    assert headers["ilagent.reason"] == "rejected"
    assert headers["ilagent.http_status"] == "400"
    assert headers["ilagent.source.topic"] == topic
    assert headers["ilagent.source.partition"] == "0"
    assert headers["ilagent.source.offset"] == "0"
    assert key not in headers["ilagent.detail"]
    second = by_offset[b"1"]
    assert second.value() == b"{broken json"
    assert dict(second.headers())["ilagent.reason"] == b"invalid_json"
    # each dead letter is one line, saying why: the engine's for ilert's 400, the writer's
    # (with the topic it went to) for the message that could not be mapped
    said = [line for line in daemon.output().splitlines() if "dead" in line]
    rejected = [line for line in said if f"{topic}[0]@0 " in line]
    assert len(rejected) == 1 and "ilert rejected" in rejected[0], said
    broken = [line for line in said if f"{topic}[0]@1 " in line]
    assert len(broken) == 1, said
    assert f"dead-lettered {topic}[0]@1 to {dlq}: invalid_json: not valid JSON: " in broken[0]
    assert daemon.stop() == 0


def produce_bytes(message: dict[str, Any]) -> bytes:
    import json

    return json.dumps(message).encode()


def test_sigterm_finishes_in_flight_then_commits_and_exits_0(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """SIGTERM during slow deliveries: in-flight ones finish, offsets committed, exit 0, logged order."""
    topic = create_topic(kafka_bootstrap, unique("term"))
    group, key = unique("g"), unique("il1api")
    daemon = run_ilagent(*daemon_args(kafka_bootstrap, group, topic,
                                      extra=["--shutdown_timeout", "10"]))
    wait_until(lambda: assigned(daemon), timeout=60, what="assignment")
    sandbox.fault(latency_ms=1500)
    produce(kafka_bootstrap, topic, events_for(key, alerts=10, per_alert=1))
    wait_until(lambda: http("GET", f"{sandbox.url}/sandbox/stats")[1]["inFlight"] >= 5,
               what="deliveries held in flight by the sandbox")
    assert daemon.stop(timeout=20) == 0
    assert len(sandbox.events(key)) == 10
    assert committed(kafka_bootstrap, group, topic) == [10]
    steps = re.findall(r"shutdown (\d)/4", daemon.output())
    assert steps == ["1", "2", "3", "4"]
