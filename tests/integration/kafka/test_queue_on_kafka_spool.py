"""``ilagent queue`` on a Kafka spool (``--spool kafka:TOPIC``) against the real broker: depth
from the group's lag, the spool's dead letters from the DLQ topic, a retry by producing again,
and one clear line for what a topic cannot do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from helpers import create_topic, read_all, unique
from ilagent.cli import main
from ilagent.records import RecordKind, read_spool_record, spool_record

KEY = "il1apiQUEUEKAFKA0001"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def spool_event(alert: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    event = json.dumps({"integrationKey": KEY, "eventType": "ALERT", "alertKey": alert,
                        "summary": f"s {alert}"})
    return spool_record(RecordKind.EVENT, integration_key=KEY, path=f"/v1/events/http/{KEY}",
                        event=event)


def dead_letter(source: str, record: tuple[bytes, bytes, list[tuple[str, bytes]]]
                ) -> dict[str, Any]:
    """A record as the dead-letter writer produces it: ilagent.* headers, then the source's."""
    key, value, headers = record
    return {"key": key, "value": value, "headers": [
        ("ilagent.reason", b"rejected"), ("ilagent.detail", b"400 from ilert"),
        ("ilagent.http_status", b"400"), ("ilagent.source.topic", source.encode()),
        ("ilagent.source.partition", b"0"), ("ilagent.source.offset", b"7"), *headers]}


@pytest.fixture
def spool(kafka_bootstrap: str) -> dict[str, str]:
    """A 2-partition spool topic with 3 records, 1 committed by the group; a DLQ topic with a
    dead letter of the spool, one of another topic and one the spool cannot read."""
    topic = create_topic(kafka_bootstrap, unique("qspool"), partitions=2)
    dlq = create_topic(kafka_bootstrap, unique("qdlq"))
    group = unique("qgroup")
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for n, partition in enumerate((0, 0, 1)):
        key, value, headers = spool_event(f"a{n}")
        producer.produce(topic, key=key, value=value, headers=headers, partition=partition)
    for letter in (dead_letter(topic, spool_event("dead")),
                   dead_letter("plant-alarms", spool_event("other")),
                   dead_letter(topic, (KEY.encode(), b"{}", []))):
        producer.produce(dlq, **letter)
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group})
    consumer.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
    consumer.close()
    return {"topic": topic, "dlq": dlq, "group": group, "bootstrap": kafka_bootstrap}


def options(spool: dict[str, str]) -> list[str]:
    return ["--spool", f"kafka:{spool['topic']}", "--kafka_brokers", spool["bootstrap"],
            "--kafka_group_id", spool["group"], "--dlq_topic", spool["dlq"]]


def test_stats_and_list_show_the_groups_lag_and_the_spools_dead_letters(
        spool: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    """Depth is the group's lag (3 records, 1 committed: 2); list shows the spool's 2 dead
    letters by their DLQ position, keys masked, the other topic's only counted."""
    code, out, _ = run(capsys, "queue", "stats", *options(spool))
    assert code == 0
    assert f"queue: 2 record(s) of {spool['topic']} not yet committed" in out
    assert f"dead-letter topic {spool['dlq']}: 3 record(s)" in out
    code, out, _ = run(capsys, "queue", "list", *options(spool))
    assert code == 0, out
    assert "partition   0: low 0, high 2, committed 1, waiting 1" in out
    assert "partition   1: low 0, high 1, committed -, waiting 1" in out
    assert "2 (1 of other topics not shown)" in out
    assert f"{spool['dlq']}:0:0" in out and f"{spool['dlq']}:0:2" in out
    assert KEY not in out and KEY[-4:] in out
    code, out, _ = run(capsys, "queue", "list", "--json", *options(spool))
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["table"] for r in rows] == ["depth", "dead_letters", "dead_letters"]
    assert rows[1]["alertKey"] == "dead" and rows[1]["reason"] == "rejected"


def test_retry_produces_the_dead_letter_again_in_the_spool_format(
        spool: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    """`queue retry DLQ:0:0` produces the letter's record to the spool topic, read back as the
    record that was dead-lettered."""
    code, out, err = run(capsys, "queue", "retry", f"{spool['dlq']}:0:0", *options(spool))
    assert code == 0, err
    assert f"re-produced {spool['dlq']}:0:0 to {spool['topic']}:" in out
    records = read_all(spool["bootstrap"], spool["topic"], expect=4)
    retried = [read_spool_record(m.key(), m.value(), m.headers()) for m in records]
    key, value, headers = spool_event("dead")
    assert read_spool_record(key, value, headers) in retried


@pytest.mark.parametrize(("action", "said"), [
    (["retry", "{dlq}:0:1"], "is not a dead letter of the spool"),
    (["retry", "{dlq}:0:2"], "cannot be retried: it does not read as a spool record"),
    (["retry", "other-dlq:0:0"], "is not in --dlq_topic"),
    (["retry", "--all"], "retry --all is refused on a Kafka spool"),
    (["purge", "queue", "--yes"], "a Kafka spool cannot be purged"),
])
def test_what_a_kafka_spool_cannot_do_is_one_line_and_exit_2(
        spool: dict[str, str], capsys: pytest.CaptureFixture[str], action: list[str],
        said: str) -> None:
    """Retrying a letter of another topic or an unreadable one, --all, and purge: exit 2, one
    line saying why, nothing produced."""
    argv = [a.format(dlq=spool["dlq"]) for a in action]
    code, _, err = run(capsys, "queue", *argv, *options(spool))
    assert code == 2
    assert said in err and len(err.strip().splitlines()) == 1
    assert size(spool["bootstrap"], spool["topic"]) == 3


def size(bootstrap: str, topic: str) -> int:
    """Records in the 2 partitions of ``topic``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("size")})
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in (0, 1))
    finally:
        consumer.close()


def test_the_daemons_settings_file_and_variables_reach_a_secured_spool(
        spool: dict[str, str], secured_kafka: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The spool, group, DLQ topic and SASL_SSL settings from the daemon's TOML file, the
    password from ILAGENT_KAFKA_SASL_PASSWORD: `queue stats --config FILE` reads the spool
    and never shows the password."""
    settings = tmp_path / "ilagent.toml"
    settings.write_text("\n".join([
        f'spool = "kafka:{spool["topic"]}"', f'kafka_group_id = "{spool["group"]}"',
        f'dlq_topic = "{spool["dlq"]}"',
        f'kafka_brokers = "{secured_kafka.sasl_ssl_bootstrap}"',
        'kafka_security_protocol = "SASL_SSL"', 'kafka_sasl_mechanism = "SCRAM-SHA-512"',
        'kafka_sasl_username = "ilagent"', f'kafka_ssl_ca = "{secured_kafka.tls / "ca.pem"}"',
    ]) + "\n")
    monkeypatch.setenv("ILAGENT_KAFKA_SASL_PASSWORD", secured_kafka.scram_password)
    code, out, err = run(capsys, "queue", "stats", "--config", str(settings))
    assert code == 0, err
    assert f"queue: 2 record(s) of {spool['topic']}" in out
    assert secured_kafka.scram_password not in out + err


def test_brokers_that_do_not_answer_are_one_line() -> None:
    """Nothing listening: one line naming the cause, no librdkafka log lines before it."""
    import subprocess
    import sys

    import broker

    done = subprocess.run(
        [sys.executable, "-m", "ilagent", "queue", "list", "--spool", "kafka:spool",
         "--kafka_brokers", f"127.0.0.1:{broker.free_port()}", "--timeout", "2"],
        capture_output=True, text=True, timeout=60, check=False)
    lines = done.stderr.splitlines()
    assert done.returncode != 0 and done.stdout == ""
    assert len(lines) == 1 and lines[0].startswith(
        "ilagent queue: error: no Kafka broker answered within 2 s: "), lines
