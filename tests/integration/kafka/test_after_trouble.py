"""At-least-once at its edges on the real broker: a restart, a rolling restart, a rebalance of a
paused partition, a message that waits for ever, an event too old to page anyone.

Each is bounded in time; pacing is off (``FAST``) unless a test is about pacing.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from typing import Any

import pytest
from confluent_kafka import Producer

from helpers import (
    FAST,
    Sandbox,
    committed,
    committed_maps,
    create_topic,
    events_for,
    http,
    metric,
    produce,
    produce_slowly,
    read_all,
    received_by_alert,
    unique,
    wait_until,
)


def daemon_args(bootstrap: str, group: str, topic: str, *extra: str) -> list[str]:
    return ["daemon", "-v", "-v", "--kafka_brokers", bootstrap, "--kafka_group_id", group,
            "--kafka_offset_reset", "earliest", *FAST, "-e", topic, *extra]


def assigned(daemon: Any) -> bool:
    return "assigned " in daemon.output()


def metric_now(port: int, name: str) -> float | None:
    """A metric of the daemon, or None while its HTTP server is not up (yet)."""
    try:
        return metric(port, name)
    except OSError:
        return None


def reopened(bodies: list[dict[str, Any]]) -> list[str]:
    """Alert keys that ilert received an ALERT for after their RESOLVE."""
    resolved: set[str] = set()
    again = []
    for body in bodies:
        alert = body.get("alertKey", "")
        if body["eventType"] == "RESOLVE":
            resolved.add(alert)
        elif body["eventType"] == "ALERT" and alert in resolved:
            again.append(alert)
    return again


def test_a_restart_does_not_open_resolved_alerts_again(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """One key answered 429 holds its partition's position while 40 alerts open and resolve;
    after a SIGKILL and a restart none of the 40 is sent again (their offsets are skipped), and
    the held event arrives once ilert takes it."""
    import broker

    from ilagent import offsetmap

    topic = create_topic(kafka_bootstrap, unique("repage"))
    group, limited, key, port = unique("g"), unique("il1apilim"), unique("il1api"), \
        broker.free_port()
    sandbox.fault(status=429, integration_key=limited)
    args = daemon_args(kafka_bootstrap, group, topic, "-p", str(port))
    daemon = run_ilagent(*args)
    wait_until(lambda: assigned(daemon), timeout=60, what="assignment")
    held = {"integrationKey": limited, "eventType": "ALERT", "alertKey": "held", "summary": "x"}
    story = [{"integrationKey": key, "eventType": kind, "alertKey": f"a{n}", "summary": f"a{n}"}
             for n in range(40) for kind in ("ALERT", "RESOLVE")]
    produce(kafka_bootstrap, topic, [held, *story])
    wait_until(lambda: len(sandbox.events(key)) == 80, what="the 40 alerts opened and resolved")
    wait_until(lambda: offsetmap.decode(committed_maps(kafka_bootstrap, group, topic)[0][1], 0)
               == [(1, 81)], what="a commit at the held offset listing the 80 others as done")
    daemon.kill()

    daemon = run_ilagent(*args)
    wait_until(lambda: metric_now(port, "ilagent_kafka_finished_skipped_total") == 80, timeout=60,
               what="the 80 finished offsets read again and skipped")
    sandbox.clear_faults()
    wait_until(lambda: len(sandbox.events(limited)) == 1, what="the held event")
    wait_until(lambda: committed(kafka_bootstrap, group, topic) == [81], what="all committed")
    bodies = sandbox.bodies(key)
    assert reopened(bodies) == []
    assert len(bodies) == 80, "events of the 40 alerts were sent again after the restart"
    assert daemon.stop() == 0


def test_sigkill_three_times_loses_nothing_keeps_order_and_few_duplicates(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    """5,000 events over 100 alerts, ilert answering in 5 ms, the daemon SIGKILLed 3 times while
    it delivers: all arrive, each alert's events first arrive in order and its last is last, and
    only what was in flight or finished in the last milliseconds before a kill is sent twice."""
    import random

    topic = create_topic(kafka_bootstrap, unique("kill"), partitions=4)
    group, key = unique("g"), unique("il1api")
    sandbox.fault(latency_ms=5)
    events = events_for(key, alerts=100, per_alert=50)
    produce(kafka_bootstrap, topic, events, keys=[e["alertKey"] for e in events])
    args = daemon_args(kafka_bootstrap, group, topic)
    rng = random.Random(7)

    def accepted() -> int:  # cheap to ask often, unlike the events themselves
        return int(http("GET", f"{sandbox.url}/sandbox/stats")[1]["accepted"])

    daemon = run_ilagent(*args)
    for _ in range(3):
        target = accepted() + rng.randint(300, 1200)
        wait_until(lambda t=target: accepted() >= t, timeout=60,
                   what="deliveries before the next kill", interval=0.02)
        daemon.kill()
        daemon = run_ilagent(*args)
    wait_until(lambda: len({b["summary"] for b in sandbox.bodies(key)}) == 5000, timeout=120,
               what="all 5,000 distinct events")
    wait_until(lambda: sum(committed(kafka_bootstrap, group, topic, 4)) == 5000,
               what="every offset committed")
    by_alert = received_by_alert(sandbox, key)
    assert len(by_alert) == 100
    for alert, numbers in by_alert.items():
        assert list(dict.fromkeys(numbers)) == list(range(50)), f"{alert} out of order"
        assert numbers[-1] == 49, f"{alert} ended with {numbers[-1]}"
    duplicates = sum(len(n) for n in by_alert.values()) - 5000
    with capsys.disabled():  # the report the issue asks for, shown in every run
        print(f"\n[report] duplicates after 3 SIGKILLs of 5,000 events over 100 alerts: "
              f"{duplicates}")
    # what a kill costs at ~5,000 events a second: the requests in flight (up to 24) and what
    # finished since the last commit (every 10 ms while a backlog drains), ~100-250 a kill on a
    # quiet machine (bench/RESULTS.md), more while the rest of the suite loads both cores; the
    # old quarter-second cadence with a position held back by slow alerts cost 1,400-2,400
    assert duplicates <= 1500
    assert daemon.stop() == 0


@pytest.mark.parametrize("run", range(5))
def test_a_rolling_restart_sends_nothing_twice(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any, run: int) -> None:
    """Two members on four partitions, each replaced in turn as a Deployment rolls (the new one
    first, then SIGTERM to the old) while events flow: every event arrives exactly once."""
    topic = create_topic(kafka_bootstrap, unique("roll"), partitions=4)
    group, key = unique("g"), unique("il1api")
    args = daemon_args(kafka_bootstrap, group, topic)
    sandbox.fault(latency_ms=5)
    first, second = run_ilagent(*args), run_ilagent(*args)
    wait_until(lambda: assigned(first) and assigned(second), timeout=60, what="two members")
    events = events_for(key, alerts=100, per_alert=20)
    failures: list[str] = []
    producer = threading.Thread(target=produce_slowly, args=(kafka_bootstrap, topic, events),
                                kwargs={"per_second": 250, "failures": failures})
    producer.start()
    try:
        for old in (first, second):
            wait_until(lambda: len(sandbox.events(key)) > 100, what="events flowing")
            new = run_ilagent(*args)
            wait_until(lambda new=new: assigned(new), timeout=60, what="the new member's share")
            assert old.stop() == 0
    finally:
        producer.join()
    assert not failures, failures
    wait_until(lambda: len({b["summary"] for b in sandbox.bodies(key)}) == 2000, timeout=90,
               what="all 2,000 events")
    wait_until(lambda: sum(committed(kafka_bootstrap, group, topic, 4)) == 2000,
               what="every offset committed")
    counts: dict[str, int] = defaultdict(int)
    for body in sandbox.bodies(key):
        counts[body["summary"]] += 1
    twice = sorted(summary for summary, count in counts.items() if count > 1)
    assert twice == [], f"run {run}: {len(twice)} events sent twice, e.g. {twice[:5]}"


def test_a_paused_partition_moved_away_and_back_resumes(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """During an outage both partitions of a member are paused; one moves to a second member
    and back when it leaves: once ilert answers again, everything is delivered."""
    import broker

    topic = create_topic(kafka_bootstrap, unique("paused"), partitions=2)
    group, key, port = unique("g"), unique("il1api"), broker.free_port()
    sandbox.fault(status=503)
    first = run_ilagent(*daemon_args(kafka_bootstrap, group, topic, "-p", str(port),
                                     "--max_buffered", "3"))
    wait_until(lambda: assigned(first), timeout=60, what="assignment")
    for partition in (0, 1):
        produce(kafka_bootstrap, topic, events_for(key, alerts=1, per_alert=10)[:10],
                partition=partition)
    wait_until(lambda: metric(port, "ilagent_kafka_paused_partitions") == 2,
               what="both partitions paused")
    second = run_ilagent(*daemon_args(kafka_bootstrap, group, topic, "--max_buffered", "3",
                                      "--shutdown_timeout", "1"))
    wait_until(lambda: assigned(second), timeout=60, what="one partition moved away")
    assert second.stop() == 0
    wait_until(lambda: first.output().count("assigned ") >= 2, timeout=60,
               what="the partition back at the first member")
    sandbox.clear_faults()
    wait_until(lambda: committed(kafka_bootstrap, group, topic, 2) == [10, 10], timeout=60,
               what="both partitions delivered and committed")
    assert first.stop() == 0


def test_a_message_that_waits_for_ever_is_visible(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """A key answered 429 for good: its message's wait shows in the gauge, in /health?details
    and in one WARNING naming the alert key, the masked key and ilert's last answer."""
    import broker

    topic = create_topic(kafka_bootstrap, unique("stuck"))
    group, limited, port = unique("g"), unique("il1apilim"), broker.free_port()
    sandbox.fault(status=429, integration_key=limited)
    daemon = run_ilagent(*daemon_args(kafka_bootstrap, group, topic, "-p", str(port),
                                      "--stuck_after", "1"))
    wait_until(lambda: assigned(daemon), timeout=60, what="assignment")
    produce(kafka_bootstrap, topic, [
        {"integrationKey": limited, "eventType": "ALERT", "alertKey": "Door-3", "summary": "x"},
        *events_for(unique("il1api"), alerts=3, per_alert=2)])
    gauge = f'ilagent_oldest_unfinished_seconds{{partition="0",source="kafka",topic="{topic}"}}'
    wait_until(lambda: metric(port, gauge) >= 1, what="the gauge past one second")
    details = wait_until(lambda: http("GET", f"http://127.0.0.1:{port}/health?details")[1]
                         .get("stuck"), what="the stuck message in /health?details")
    assert details[0]["where"] == f"{topic}[0]@0"
    assert details[0]["alert_key"] == "door-3"
    assert details[0]["last_answer"].startswith("429")
    assert limited not in json.dumps(details)
    assert details[0]["key"].endswith(limited[-4:])
    wait_until(lambda: "unfinished for more than 1 s" in daemon.output(), what="the warning")
    line = next(x for x in daemon.output().splitlines() if "unfinished for more than" in x)
    assert "alert key 'door-3'" in line and "last answer: 429" in line and limited not in line
    sandbox.clear_faults()
    wait_until(lambda: committed(kafka_bootstrap, group, topic) == [7], what="all committed")
    wait_until(lambda: metric(port, gauge) == 0, what="the gauge back at 0")
    assert daemon.stop() == 0


def test_an_alert_older_than_max_event_age_is_dead_lettered_not_paged(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """With --max_event_age, an old ALERT goes to the DLQ as stale while an equally old RESOLVE
    (of an alert that was opened) and fresh ALERTs are sent; everything is committed."""
    topic = create_topic(kafka_bootstrap, unique("stale"))
    dlq = create_topic(kafka_bootstrap, unique("dlq"))
    group, key = unique("g"), unique("il1api")
    daemon = run_ilagent(*daemon_args(kafka_bootstrap, group, topic, "--max_event_age", "3600",
                                      "--dlq_topic", dlq))
    wait_until(lambda: assigned(daemon), timeout=60, what="assignment")
    two_hours_ago = int((time.time() - 7200) * 1000)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for event, stamp in (({"eventType": "ALERT", "alertKey": "open", "summary": "open"}, None),
                         ({"eventType": "ALERT", "alertKey": "old", "summary": "old"},
                          two_hours_ago),
                         ({"eventType": "RESOLVE", "alertKey": "open", "summary": "old"},
                          two_hours_ago),
                         ({"eventType": "ALERT", "alertKey": "new", "summary": "new"}, None)):
        extra = {"timestamp": stamp} if stamp is not None else {}
        producer.produce(topic, json.dumps({"integrationKey": key, **event}).encode(), **extra)
    assert producer.flush(30) == 0
    wait_until(lambda: committed(kafka_bootstrap, group, topic) == [4], what="all committed")
    sent = [(b["eventType"], b["alertKey"]) for b in sandbox.bodies(key)]
    assert sorted(sent) == [("ALERT", "new"), ("ALERT", "open"), ("RESOLVE", "open")]
    [letter] = read_all(kafka_bootstrap, dlq, expect=1)
    headers = {k: v.decode() for k, v in letter.headers()}
    assert headers["ilagent.reason"] == "stale"
    assert "max_event_age" in headers["ilagent.detail"]
    assert daemon.stop() == 0


def test_a_dead_letter_topic_that_refuses_everything_does_not_hang_the_shutdown(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """The DLQ topic takes no message this size: SIGTERM still ends within --shutdown_timeout
    (plus the final commit's second), with one clear ERROR, and the message stays
    uncommitted so that it is read again."""
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = create_topic(kafka_bootstrap, unique("dlqfull"))
    dlq = unique("tinydlq")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(dlq, 1, 1, config={"max.message.bytes": "64"})])[dlq].result(30)
    group = unique("g")
    daemon = run_ilagent(*daemon_args(kafka_bootstrap, group, topic, "--dlq_topic", dlq,
                                      "--shutdown_timeout", "3"))
    wait_until(lambda: assigned(daemon), timeout=60, what="assignment")
    produce(kafka_bootstrap, topic, [b"{not json, and long enough not to fit: " + b"x" * 200])
    wait_until(lambda: "could not write" in daemon.output(), what="the failing DLQ write")
    started = time.monotonic()
    assert daemon.stop(timeout=30) == 0
    took = time.monotonic() - started
    assert took < 3 + 2.5, f"the shutdown took {took:.1f} s"
    output = daemon.output()
    assert "dead letter(s) could not be written" in output and "Traceback" not in output
    assert committed(kafka_bootstrap, group, topic) == [0]  # read again from the message
