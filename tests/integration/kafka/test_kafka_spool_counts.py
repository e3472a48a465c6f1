"""An event kept on the Kafka spool is one consumed message, counted where it entered."""

from __future__ import annotations

from typing import Any

from helpers import FAST, Sandbox, create_topic, http, metric, status_or_none, unique, wait_until

EVENTS = 30


def test_a_spooled_event_is_counted_once_as_http_not_again_as_kafka(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """30 events answered 202 and delivered from the spool topic: consumed 30 times as http,
    0 as kafka (the bridge's reading of the record is not a second message)."""
    import broker

    topic, key, port = unique("spool"), unique("il1api"), broker.free_port()
    create_topic(kafka_bootstrap, topic)
    daemon = run_ilagent("daemon", "-v", "-p", str(port), "--http_rate_limit", "0",
                         "--kafka_brokers", kafka_bootstrap, "--kafka_group_id", unique("g"),
                         "--kafka_offset_reset", "earliest", *FAST,
                         "--spool", f"kafka:{topic}")
    wait_until(lambda: status_or_none("GET", f"http://127.0.0.1:{port}/ready") == 204,
               timeout=60, what="the daemon ready")
    for n in range(EVENTS):
        status, body = http("POST", f"http://127.0.0.1:{port}/api/events", {
            "integrationKey": key, "eventType": "ALERT", "alertKey": "a", "summary": f"#{n}"})
        assert status == 202, body
    wait_until(lambda: len(sandbox.events(key)) >= EVENTS, what="30 deliveries")
    consumed = 'ilagent_messages_consumed_total{source="%s"}'
    assert metric(port, consumed % "http") == EVENTS
    assert metric(port, consumed % "kafka") == 0
    assert daemon.stop() == 0
