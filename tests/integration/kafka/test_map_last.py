"""`ilagent map --last N` on the session's real broker: the newest N messages of a topic, mapped,
and no trace of the read in the cluster's consumer groups."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from helpers import committed, create_topic, secret, unique

ILAGENT = [sys.executable, "-m", "ilagent"]
MAPPING = ["--event_key", "il1apimaplast0001", "--map_key_alert_key", "mCode",
           "--map_key_summary", "comment"]


def ilagent(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ILAGENT, *args], capture_output=True, text=True, timeout=90,
                          check=False, env={**os.environ, **(env or {})})


def produce_numbered(bootstrap: str, topic: str, count: int) -> dict[int, tuple[int, int]]:
    """Messages 0…count-1, one a millisecond apart by timestamp, most to partition 0 and every
    fourth to partition 1; each number → its (partition, offset)."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5})
    placed: dict[int, tuple[int, int]] = {}
    failures: list[str] = []
    base_ms = int(time.time() * 1000) - 60_000  # recent: retention must not take them

    def delivered(number: int) -> Any:
        def report(error: Any, message: Any) -> None:
            if error:
                failures.append(str(error))
            else:
                placed[number] = (message.partition(), message.offset())
        return report

    for number in range(count):
        body = {"mCode": f"M{number}", "comment": f"message {number}", "n": number}
        producer.produce(topic, json.dumps(body).encode(), key=f"k{number}".encode(),
                         partition=1 if number % 4 == 0 else 0, timestamp=base_ms + number,
                         on_delivery=delivered(number))
    assert producer.flush(60) == 0 and not failures, failures
    return placed


def map_groups(bootstrap: str) -> list[str]:
    """The consumer groups the broker knows whose id starts with ilagent-map-."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    listed = admin.list_consumer_groups(request_timeout=30).result(timeout=30)
    assert not listed.errors, listed.errors
    return [group.group_id for group in listed.valid if group.group_id.startswith("ilagent-map-")]


def test_the_newest_50_of_80_are_mapped_and_no_group_is_left(kafka_bootstrap: str) -> None:
    """Of 80 messages on two partitions, exactly the newest 50 are printed, oldest first, each
    with its topic, partition, offset and event; the read's group is never committed, never
    listed among the consumer groups."""
    topic = create_topic(kafka_bootstrap, unique("maplast"), partitions=2)
    placed = produce_numbered(kafka_bootstrap, topic, 80)
    started = time.monotonic()
    done = ilagent("-vv", "map", "--kafka_brokers", kafka_bootstrap, "-e", topic, "--last", "50", *MAPPING)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    print(f"\n[report] map --last 50 of 80 on 2 partitions: {len(results)} results in "
          f"{took:.1f} s")
    assert [r["event"]["alertKey"] for r in results] == [f"M{n}" for n in range(30, 80)]
    for number, result in zip(range(30, 80), results, strict=True):
        assert list(result)[:4] == ["topic", "partition", "offset", "result"]
        assert (result["topic"], result["partition"], result["offset"]) == (topic, *placed[number])
        assert result["result"] == "event" and "line" not in result
        assert result["event"]["summary"] == f"message {number}"
        assert result["event"]["customDetails"] == {"messageKey": f"k{number}", "topic": topic}
    group = re.search(r"as group (ilagent-map-[0-9a-f]+) ", done.stderr)
    assert group, done.stderr
    assert map_groups(kafka_bootstrap) == []
    assert committed(kafka_bootstrap, group[1], topic, partitions=2) == [-1001, -1001]


def test_fewer_messages_than_asked_prints_them_all(kafka_bootstrap: str) -> None:
    """--last 50 of a topic holding 3 (and of one holding none): all there are, exit 0."""
    topic = create_topic(kafka_bootstrap, unique("maplast-few"), partitions=2)
    produce_numbered(kafka_bootstrap, topic, 3)
    done = ilagent("map", "--kafka_brokers", kafka_bootstrap, "-e", topic, "--last", "50", *MAPPING)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["event"]["alertKey"] for line in done.stdout.splitlines()] == [
        "M0", "M1", "M2"]
    empty = create_topic(kafka_bootstrap, unique("maplast-empty"))
    done = ilagent("map", "--kafka_brokers", kafka_bootstrap, "-e", empty, "--last", "5", *MAPPING)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    checked = ilagent("map", "--kafka_brokers", kafka_bootstrap, "-e", empty, "--last", "5", "--check",
                      *MAPPING)
    assert checked.returncode == 1
    assert checked.stderr.splitlines() == [
        f"ilagent map: error: no message to check: the topic {empty} holds none"]


def test_an_unknown_topic_is_one_line_and_exit_1(kafka_bootstrap: str) -> None:
    """A topic the cluster does not have: one line on stderr naming it, exit 1, nothing created."""
    topic = unique("maplast-missing")
    done = ilagent("map", "--kafka_brokers", kafka_bootstrap, "-e", topic, "--last", "5", *MAPPING)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines() == [
        f"ilagent map: error: the Kafka topic {topic} does not exist"]
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    assert topic not in admin.list_topics(timeout=10).topics


def test_brokers_that_do_not_answer_are_one_line_and_exit_2() -> None:
    """Nothing listening: after --timeout, one line naming the cause, exit 2, no traceback."""
    import broker

    started = time.monotonic()
    done = ilagent("map", "--kafka_brokers", f"127.0.0.1:{broker.free_port()}", "-e", "t", "--last", "5",
                   "--timeout", "2", *MAPPING)
    took = time.monotonic() - started
    assert (done.returncode, done.stdout) == (2, "") and took < 20, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "ilagent map: error: no Kafka broker answered within 2 s: "), lines


def test_last_with_a_file_is_a_usage_error(kafka_bootstrap: str, tmp_path: Path) -> None:
    """--last and FILE name two sources: exit 2, one line, nothing read."""
    messages = tmp_path / "messages.jsonl"
    messages.write_text('{"mCode": "M1"}\n')
    done = ilagent("map", "--kafka_brokers", kafka_bootstrap, "-e", "t", "--last", "5", str(messages),
                   *MAPPING)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [
        f"ilagent map: error: --last reads the topic -e from Kafka, not {messages}: give one "
        "of them"]


def test_last_reads_through_sasl_ssl_with_the_password_from_the_environment(
        secured_kafka: Any) -> None:
    """The daemon's connection options work for map --last (password from ILAGENT_*); a wrong
    password is one line and exit 2, without the password, well before --timeout."""
    topic = create_topic(secured_kafka.bootstrap, unique("maplast-sasl"), partitions=2)
    produce_numbered(secured_kafka.bootstrap, topic, 5)
    flags = ["--kafka_brokers", secured_kafka.sasl_ssl_bootstrap, "--kafka_security_protocol", "SASL_SSL",
             "--kafka_sasl_mechanism", "SCRAM-SHA-512", "--kafka_sasl_username", "ilagent",
             "--kafka_ssl_ca", str(secured_kafka.tls / "ca.pem")]
    done = ilagent("map", *flags, "-e", topic, "--last", "2", *MAPPING,
                   env={"ILAGENT_KAFKA_SASL_PASSWORD": secured_kafka.scram_password})
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["event"]["alertKey"] for line in done.stdout.splitlines()] == [
        "M3", "M4"]
    wrong = secret("wrong-map-password")
    started = time.monotonic()
    done = ilagent("map", *flags, "-e", topic, "--last", "2", "--timeout", "30", *MAPPING,
                   env={"ILAGENT_KAFKA_SASL_PASSWORD": wrong})
    took = time.monotonic() - started
    lines = done.stderr.splitlines()
    print(f"\n[report] map --last with a wrong SASL password: exit {done.returncode} after "
          f"{took:.1f} s")
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert took < 20, "refused credentials end the wait before --timeout"
    assert lines[0].startswith("ilagent map: error: Kafka authentication failed"), lines
    assert wrong not in done.stderr + done.stdout
    assert secured_kafka.scram_password not in done.stderr + done.stdout
