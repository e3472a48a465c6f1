"""The intake's spool on Kafka (``--spool kafka:TOPIC``) on the real broker: what was answered
202 survives a SIGKILL, is delivered by the group's survivor, in order per alert."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from helpers import (
    FAST,
    Sandbox,
    committed,
    create_topic,
    http,
    read_all,
    status_or_none,
    unique,
    wait_until,
)

KEYS, ALERTS, PER_ALERT = 10, 5, 40  # 2,000 events over 50 alerts
TOTAL = KEYS * ALERTS * PER_ALERT


def spool_daemon(run_ilagent: Any, bootstrap: str, group: str, topic: str, port: int,
                 *extra: str) -> Any:
    return run_ilagent("daemon", "-v", "-v", "-p", str(port), "--http_rate_limit", "0",
                       "--kafka_brokers", bootstrap, "--kafka_group_id", group,
                       "--kafka_offset_reset", "earliest", *FAST, "--spool", f"kafka:{topic}",
                       *extra)


def test_two_daemons_on_a_kafka_spool_lose_nothing_when_one_is_killed(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Two daemons of one group on a 4-partition spool topic take 2,000 events posted to them
    in turn (each waited for: 202 only after the brokers' ack); one is SIGKILLed after half:
    the survivor delivers all, each alert's events first arrive in order, few twice."""
    import broker

    topic = create_topic(kafka_bootstrap, unique("spool"), partitions=4)
    group, ports = unique("g"), [broker.free_port(), broker.free_port()]
    keys = [unique("il1api") for _ in range(KEYS)]
    daemons = [spool_daemon(run_ilagent, kafka_bootstrap, group, topic, port) for port in ports]
    # each with partitions of its own ("assigned nothing" is the rebalance's first round)
    wait_until(lambda: all(f"assigned {topic}[" in d.output() for d in daemons), timeout=60,
               what="both daemons in the group with partitions")
    for port in ports:
        wait_until(lambda port=port: http("GET", f"http://127.0.0.1:{port}/ready")[0] == 204,
                   what="the daemon ready")
    sandbox.fault(latency_ms=5)
    base = int(http("GET", f"{sandbox.url}/sandbox/stats")[1]["accepted"])
    posted, killed = [0], threading.Event()
    lock = threading.Lock()

    def post(event: dict[str, Any], turn: int) -> None:
        """Post to the daemon whose turn it is (the survivor once the other is killed)."""
        deadline = time.monotonic() + 30
        while True:
            port = ports[1] if killed.is_set() else ports[turn % 2]
            try:
                status, body = http("POST", f"http://127.0.0.1:{port}/api/events", event)
            except OSError:  # the killed daemon: its event may be stored or not, so again
                status, body = 0, None
            if status == 202:
                break
            assert time.monotonic() < deadline, f"no 202 for {event['summary']}: {body}"
        with lock:
            posted[0] += 1

    def post_key(k: int) -> None:
        for n in range(PER_ALERT):
            for a in range(ALERTS):
                post({"integrationKey": keys[k], "eventType": "ALERT", "alertKey": f"a{a}",
                      "summary": f"k{k}a{a}#{n}"}, turn=n * ALERTS + a + k)

    started = time.monotonic()
    with ThreadPoolExecutor(KEYS) as pool:
        futures = [pool.submit(post_key, k) for k in range(KEYS)]
        wait_until(lambda: posted[0] >= TOTAL // 2, timeout=60, interval=0.01,
                   what="half the events answered 202")
        daemons[0].kill()
        killed.set()
        for future in futures:
            future.result()
    took_posting = time.monotonic() - started

    def delivered() -> dict[str, list[int]]:
        by_alert: dict[str, list[int]] = defaultdict(list)
        for key in keys:
            for body in sandbox.bodies(key):
                alert, n = body["summary"].split("#")
                by_alert[alert].append(int(n))
        return by_alert

    def accepted() -> int:
        return int(http("GET", f"{sandbox.url}/sandbox/stats")[1]["accepted"])

    wait_until(lambda: accepted() >= base + TOTAL, timeout=60, what="2,000 deliveries at least")
    def all_delivered() -> dict[str, list[int]] | None:
        by_alert = delivered()
        return by_alert if sum(len(set(n)) for n in by_alert.values()) == TOTAL else None

    by_alert = wait_until(all_delivered, timeout=30, what="all 2,000 distinct events")
    assert len(by_alert) == KEYS * ALERTS
    for alert, numbers in by_alert.items():
        assert list(dict.fromkeys(numbers)) == list(range(PER_ALERT)), f"{alert} out of order"
    twice = sum(len(n) for n in by_alert.values()) - TOTAL
    with capsys.disabled():  # the report the issue asks for, shown in every run
        print(f"\n[report] Kafka spool, 2 daemons, one SIGKILLed after 1,000 of 2,000 events: "
              f"{twice} sent twice (posting took {took_posting:.1f} s)")
    assert twice <= 300
    assert daemons[1].stop() == 0


def test_spool_records_that_do_not_read_are_dead_letters_and_the_rest_is_delivered(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """A record without the version header, one of a newer version and one of an unknown kind
    go to the DLQ with their reasons; an event posted after them is delivered; all committed."""
    import broker
    from confluent_kafka import Producer

    topic = create_topic(kafka_bootstrap, unique("spool"))
    dlq = create_topic(kafka_bootstrap, unique("dlq"))
    group, key, port = unique("g"), unique("il1api"), broker.free_port()
    event = {"integrationKey": key, "eventType": "ALERT", "alertKey": "a", "summary": "s"}
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for headers in ([], [("ilagent-spool", b"2"), ("ilagent-kind", b"event")],
                    [("ilagent-spool", b"1"), ("ilagent-kind", b"sms")]):
        producer.produce(topic, key=key.encode(), value=json.dumps(event).encode(),
                         headers=headers)
    assert producer.flush(30) == 0
    daemon = spool_daemon(run_ilagent, kafka_bootstrap, group, topic, port, "--dlq_topic", dlq)
    wait_until(lambda: status_or_none("GET", f"http://127.0.0.1:{port}/ready") == 204,
               timeout=60, what="the daemon ready")
    status, body = http("POST", f"http://127.0.0.1:{port}/api/events", event)
    assert status == 202 and body["id"].startswith(f"{topic}[0]@"), body
    wait_until(lambda: committed(kafka_bootstrap, group, topic) == [4], what="all committed")
    assert [b["summary"] for b in sandbox.bodies(key)] == ["s"]
    letters = read_all(kafka_bootstrap, dlq, expect=3)
    reasons = [dict(letter.headers())["ilagent.reason"] for letter in letters]
    assert reasons == [b"spool_format", b"spool_format", b"unknown_kind"]
    assert daemon.stop() == 0
    assert "could delete events answered 202" not in daemon.output()


def test_a_spool_topic_that_could_delete_unsent_events_is_one_warning(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """A compacted topic with an hour's retention: one WARNING at start naming both."""
    import broker
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = unique("spool")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config={
        "retention.ms": "3600000", "cleanup.policy": "compact"})])[topic].result(30)
    daemon = spool_daemon(run_ilagent, kafka_bootstrap, unique("g"), topic, broker.free_port())
    wait_until(lambda: "could delete events answered 202" in daemon.output(), timeout=30,
               what="the warning")
    [line] = [x for x in daemon.output().splitlines() if "could delete events" in x]
    assert "WARNING" in line and "retention.ms=3600000" in line and "cleanup.policy=compact" in line
    assert daemon.stop() == 0
