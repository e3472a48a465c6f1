"""MQTT's buffer on the Kafka spool (``--mqtt_buffer --spool kafka:TOPIC``) on real Mosquitto
and Kafka: a message acknowledged to the broker is kept on the topic, and survives a SIGKILL."""

from __future__ import annotations

from typing import Any

from helpers import (
    FAST,
    Sandbox,
    create_topic,
    events_for,
    metric,
    publish,
    received_by_alert,
    subscribed,
    unique,
    wait_until,
)

ALERTS, PER_ALERT = 20, 50  # 1,000 messages


def records(bootstrap: str, topic: str, *, partitions: int) -> int:
    """How many records the topic holds (the sum of its partitions' high watermarks)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("count")})
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in range(partitions))
    finally:
        consumer.close()


def test_buffered_messages_acknowledged_on_a_kafka_spool_survive_sigkill(
        mosquitto: Any, kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """1,000 QoS 1 messages over 20 alerts are acknowledged once the brokers have them on the
    spool topic (ilert down, nothing delivered); the daemon is SIGKILLed; a restarted daemon
    delivers them all, each alert's events first arriving in order."""
    import broker

    mqtt_topic, key, port = unique("events"), unique("il1api"), broker.free_port()
    spool = create_topic(kafka_bootstrap, unique("spool"), partitions=2)
    create_topic(kafka_bootstrap, mqtt_topic)  # -e names a Kafka event topic too: empty here
    args = ["daemon", "-v", "-v", "-m", "127.0.0.1", "-q", str(mosquitto.ports["plain"]),
            "-e", mqtt_topic, "-n", unique("ilagent"), *FAST, "--mqtt_qos", "1",
            "--mqtt_buffer", "--kafka_brokers", kafka_bootstrap,
            "--kafka_group_id", unique("g"), "--kafka_offset_reset", "earliest",
            "--spool", f"kafka:{spool}", "-p", str(port), "--http_host", "127.0.0.1"]
    daemon = run_ilagent(*args)
    wait_until(lambda: subscribed(daemon), timeout=30, what="the subscription")
    sandbox.fault(status=503, integration_key=key)
    publish(mosquitto.ports["plain"], mqtt_topic,
            events_for(key, alerts=ALERTS, per_alert=PER_ALERT))  # type: ignore[arg-type]
    wait_until(lambda: metric(port, "ilagent_mqtt_acks_total") >= ALERTS * PER_ALERT,
               timeout=60, what="1,000 acknowledgements")
    daemon.kill()
    assert records(kafka_bootstrap, spool, partitions=2) >= ALERTS * PER_ALERT
    sandbox.clear_faults()
    assert sandbox.events(key) == []
    daemon = run_ilagent(*args)

    def first_arrivals() -> dict[str, list[int]] | None:
        by_alert = {alert: list(dict.fromkeys(numbers))
                    for alert, numbers in received_by_alert(sandbox, key).items()}
        done = sum(len(numbers) for numbers in by_alert.values()) == ALERTS * PER_ALERT
        return by_alert if done else None

    by_alert = wait_until(first_arrivals, timeout=60, what="all 1,000 events delivered")
    assert len(by_alert) == ALERTS
    assert all(numbers == list(range(PER_ALERT)) for numbers in by_alert.values()), by_alert
    assert daemon.stop() == 0
