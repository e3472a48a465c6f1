"""MQTT mode on a real Mosquitto: mapping, acknowledgement after delivery, buffer mode, kills.

Pacing is off unless a test is about pacing, so the figures are about the bridge. Every test
uses its own topic (and client id), so a message of one test never reaches another's daemon.
"""

from __future__ import annotations

import json
import random
import resource
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import (
    FAST,
    LEGACY_SCHEMA,
    Sandbox,
    events_for,
    http,
    metric,
    publish,
    received_by_alert,
    subscribed,
    unique,
    wait_until,
)

SEED_MAPPING = ["--map_key_alert_key", "mCode", "--map_key_summary", "comment",
                "--map_key_etype", "state", "--map_val_etype_alert", "SET",
                "--map_val_etype_accept", "ACK", "--map_val_etype_resolve", "CLR",
                "--filter_key", "type", "--filter_val", "ALARM"]


def mqtt_args(port: int, topic: str, *extra: str) -> list[str]:
    return ["daemon", "-v", "-v", "-m", "127.0.0.1", "-q", str(port), "-e", topic,
            "-n", unique("ilagent"), *FAST, *extra]


def test_seed_mapping_over_mqtt_ends_as_alert_accept_resolve(
        mosquitto: Any, sandbox: Sandbox, run_ilagent: Any) -> None:
    """The guide's SET/ACK/CLR example over MQTT opens, accepts and resolves one alert; the
    filtered message sends nothing; events go to /v1/events/mqtt/<key> with the topic."""
    topic, key = f"plant/{unique('line')}/alarms", unique("il1api")
    other = unique("hall")  # a second event topic, a filter: several topics per kind
    daemon = run_ilagent(*mqtt_args(mosquitto.ports["plain"], topic, "--mqtt_qos", "1",
                                    "-e", f"{other}/+", "--event_key", key, *SEED_MAPPING))
    wait_until(lambda: subscribed(daemon), timeout=20, what="the subscription")
    publish(mosquitto.ports["plain"], topic, [
        {"type": "ALARM", "mCode": "M-17", "comment": "boiler pressure", "state": state}
        for state in ("SET", "ACK")] + [{"type": "INFO", "mCode": "M-17", "state": "SET"},
                                        {"type": "ALARM", "mCode": "M-17", "state": "CLR"}])
    publish(mosquitto.ports["plain"], f"{other}/b2",
            [{"type": "ALARM", "mCode": "B-2", "comment": "smoke", "state": "SET"}])
    wait_until(lambda: len(sandbox.events(key)) >= 4, timeout=20, what="four events")
    assert [e for e in sandbox.events(key) if e["body"]["alertKey"] == "B-2"]
    events = [e for e in sandbox.events(key) if e["body"]["alertKey"] == "M-17"]
    assert [e["eventType"] for e in events] == ["ALERT", "ACCEPT", "RESOLVE"]
    assert all(e["path"].startswith("/api/v1/events/mqtt/") for e in events)
    assert events[0]["body"]["summary"] == "boiler pressure"
    assert events[0]["body"]["customDetails"] == {"topic": topic}
    assert [a["status"] for a in sandbox.alerts() if a.get("alertKey") == "M-17"] == ["RESOLVED"]
    # at -vv each filtered message is logged (summarised only at higher rates)
    assert f"filtered MQTT {topic}: 'type' is not 'ALARM'" in daemon.output()


def test_unacknowledged_message_comes_back_after_sigkill(
        mosquitto: Any, sandbox: Sandbox, run_ilagent: Any) -> None:
    """ilert answers 503, the daemon is SIGKILLed before it delivered: the broker sends the
    message again to the restarted daemon, which delivers it."""
    topic, key = unique("events"), unique("il1api")
    args = mqtt_args(mosquitto.ports["plain"], topic, "--mqtt_qos", "1")
    daemon = run_ilagent(*args)
    wait_until(lambda: subscribed(daemon), timeout=20, what="the subscription")
    sandbox.fault(status=503, integration_key=key)
    publish(mosquitto.ports["plain"], topic, [{"integrationKey": key, "summary": "pump down"}])
    wait_until(lambda: any(r.get("status") == 503 for r in sandbox.requests()), timeout=20,
               what="a 503 answer")
    daemon.kill()
    sandbox.clear_faults()
    assert sandbox.events(key) == []
    run_ilagent(*args)  # same client id: the session and its unacknowledged message
    wait_until(lambda: sandbox.events(key), timeout=30, what="the redelivered event")
    assert sandbox.bodies(key)[0]["summary"] == "pump down"


def test_sigkill_three_times_during_1000_messages_loses_nothing(
        mosquitto: Any, sandbox: Sandbox, run_ilagent: Any) -> None:
    """1,000 QoS 1 messages over 100 alerts, the daemon SIGKILLed 3 times while delivering:
    every message reaches ilert, and every alert ends with its last event."""
    topic, key = unique("events"), unique("il1api")
    args = mqtt_args(mosquitto.ports["plain"], topic, "--mqtt_qos", "1")
    daemon = run_ilagent(*args)
    wait_until(lambda: subscribed(daemon), timeout=20, what="the subscription")
    sandbox.fault(latency_ms=15, integration_key=key)  # slow enough to be killed mid-way
    events = events_for(key, alerts=100, per_alert=10)
    publish(mosquitto.ports["plain"], topic, events)  # type: ignore[arg-type]
    def distinct() -> set[tuple[str, str]]:
        return {(b["alertKey"], b["summary"]) for b in sandbox.bodies(key)}

    rng = random.Random(11)
    for _ in range(3):
        target = min(len(distinct()) + rng.randint(100, 250), 950)
        wait_until(lambda t=target: len(distinct()) >= t, timeout=60,
                   what=f"{target} distinct events before the kill")
        daemon.kill()
        daemon = run_ilagent(*args)
    wait_until(lambda: len(distinct()) == len(events), timeout=90,
               what="every message delivered")
    wanted = {(e["alertKey"], e["summary"]) for e in events}
    assert distinct() == wanted
    by_alert = received_by_alert(sandbox, key)
    assert all(numbers[-1] == 9 for numbers in by_alert.values()), by_alert
    duplicates = len(sandbox.events(key)) - len(wanted)
    print(f"1,000 messages, 3 SIGKILLs: {duplicates} delivered twice (at least once)")


def test_buffer_mode_keeps_acknowledged_messages_over_sigkill(
        mosquitto: Any, sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """With --mqtt_buffer, 1,000 messages are acknowledged once queued (ilert down), the daemon
    is SIGKILLed; after a restart all are delivered, each alert in order, none twice."""
    topic, key = unique("events"), unique("il1api")
    port = __import__("broker").free_port()
    args = [*mqtt_args(mosquitto.ports["plain"], topic, "--mqtt_qos", "1", "--mqtt_buffer"),
            "-p", str(port), "--http_host", "127.0.0.1", "-f", str(tmp_path / "spool.db3")]
    daemon = run_ilagent(*args)
    wait_until(lambda: subscribed(daemon), timeout=20, what="the subscription")
    sandbox.fault(status=503, integration_key=key)
    events = events_for(key, alerts=50, per_alert=20)
    publish(mosquitto.ports["plain"], topic, events)  # type: ignore[arg-type]
    wait_until(lambda: metric(port, "ilagent_mqtt_acks_total") >= 1000, timeout=60,
               what="1,000 acknowledgements")
    daemon.kill()
    sandbox.clear_faults()
    assert sandbox.events(key) == []
    daemon = run_ilagent(*args)
    wait_until(lambda: len(sandbox.events(key)) >= 1000, timeout=60, what="1,000 events")
    by_alert = received_by_alert(sandbox, key)
    assert len(by_alert) == 50
    assert all(numbers == list(range(20)) for numbers in by_alert.values()), by_alert


def test_shared_subscription_splits_messages_between_two_daemons(
        mosquitto: Any, sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """Two daemons in one --mqtt_shared_group: each gets part of the messages, none is lost."""
    topic, key, group = unique("events"), unique("il1api"), unique("grp")
    ports = [__import__("broker").free_port() for _ in range(2)]
    daemons = [run_ilagent(*mqtt_args(mosquitto.ports["plain"], topic, "--mqtt_qos", "1",
                                      "--mqtt_shared_group", group, "-p", str(port),
                                      "--http_host", "127.0.0.1",
                                      "-f", str(tmp_path / f"d{port}.db3")))
               for port in ports]
    for daemon in daemons:
        wait_until(lambda d=daemon: subscribed(d), timeout=20, what="the subscriptions")
    assert f"$share/{group}/{topic}" in daemons[0].output()
    publish(mosquitto.ports["plain"], topic,
            [{"integrationKey": key, "summary": f"m{n}"} for n in range(200)])
    wait_until(lambda: {b["summary"] for b in sandbox.bodies(key)}
               >= {f"m{n}" for n in range(200)}, timeout=30, what="all 200 events")
    counts = [metric(port, 'ilagent_messages_consumed_total{source="mqtt"}') for port in ports]
    assert all(count > 0 for count in counts), counts
    assert sum(counts) == 200, counts


def test_heartbeat_topic_pings_the_heartbeat(
        mosquitto: Any, sandbox: Sandbox, run_ilagent: Any) -> None:
    """A heartbeat-topic message pings the key it names (matched through a + wildcard)."""
    base, key = unique("site"), unique("il1hbt")
    daemon = run_ilagent("daemon", "-vv", "-m", "127.0.0.1", "-q", str(mosquitto.ports["plain"]),
                         "-r", f"{base}/+/beat", "--mqtt_qos", "1", "-n", unique("ilagent"),
                         *FAST)
    wait_until(lambda: subscribed(daemon), timeout=20, what="the subscription")
    publish(mosquitto.ports["plain"], f"{base}/boiler/beat", [{"integrationKey": key}])
    wait_until(lambda: sum(h["count"] for h in sandbox.heartbeats()) == 1, timeout=20,
               what="the heartbeat ping")
    assert sandbox.heartbeats()[0]["key"].endswith(key[-4:])


def test_mqtt_messages_ilagent_0_9_buffered_are_taken_over(
        mosquitto: Any, sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """Rows ilagent 0.9 left in mqtt_queue are mapped with today's options and delivered in
    inserted_at order; one that cannot become an event is kept as a dead letter; a filtered
    message and a stale heartbeat ping are dropped; the table ends empty."""
    db, topic, key = tmp_path / "ilagent.db3", unique("events"), unique("il1api")
    with sqlite3.connect(db) as conn:
        conn.executescript(LEGACY_SCHEMA)
        rows = [(topic, {"type": "ALARM", "mCode": "M-1", "state": state, "comment": state})
                for state in ("CLR", "ACK", "SET")]  # inserted in reverse order
        rows += [(topic, {"type": "INFO", "mCode": "M-1", "state": "SET"}),
                 # passes the filter (holds "type" and "ALARM") and is no JSON: a dead letter
                 (topic, '{"type": "ALARM", not json'),
                 (f"{topic}-beat", {"integrationKey": "il1hbt123"})]
        for n, (where, payload) in enumerate(rows):
            conn.execute("INSERT INTO mqtt_queue VALUES (?, ?, ?, ?)",
                         (f"m{n}", where, payload if isinstance(payload, str)
                          else json.dumps(payload), f"2026-05-02 09:07:{9 - n:02}.000"))
    daemon = run_ilagent(*mqtt_args(mosquitto.ports["plain"], topic, "--mqtt_qos", "1",
                                    "--mqtt_buffer", "-r", f"{topic}-beat", "-f", str(db),
                                    "--event_key", key, *SEED_MAPPING))
    wait_until(lambda: len(sandbox.events(key)) == 3, timeout=30, what="the three events")
    assert [e["eventType"] for e in sandbox.events(key)] == ["ALERT", "ACCEPT", "RESOLVE"]
    assert "took over 6 MQTT message(s)" in daemon.output()
    assert "1 kept as dead letters" in daemon.output()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM mqtt_queue").fetchone()[0] == 0
        assert [r[0] for r in conn.execute("SELECT reason FROM dead_letters")] == [
            "invalid_json"]


def test_broker_restart_is_survived_and_nothing_is_lost(
        sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """The broker goes away for a while (with unacknowledged messages, ilert failing): the
    daemon keeps running, reconnects with backoff, resumes its session and delivers all —
    ilert recovers while the broker is still down, so deliveries finish with no connection to
    acknowledge them on and the broker sends every message again after it is back; each alert
    still receives its events exactly once, in order."""
    import mosquitto as broker_tool

    broker = broker_tool.start(tmp_path / "own-broker")
    try:
        topic, key = unique("events"), unique("il1api")
        port = __import__("broker").free_port()
        daemon = run_ilagent(*mqtt_args(broker.ports["plain"], topic, "--mqtt_qos", "1",
                                        "-p", str(port), "--http_host", "127.0.0.1"))
        wait_until(lambda: subscribed(daemon), timeout=20, what="the subscription")
        sandbox.fault(status=503, integration_key=key)
        publish(broker.ports["plain"], topic, events_for(key, alerts=4, per_alert=5))
        wait_until(lambda: metric(port, "ilagent_mqtt_unacknowledged") == 20, timeout=20,
                   what="20 messages in hand")
        broker.stop()
        wait_until(lambda: metric(port, "ilagent_mqtt_reconnects_total") >= 2, timeout=20,
                   what="reconnect attempts")
        assert http("GET", f"http://127.0.0.1:{port}/ready/mqtt")[0] == 503
        sandbox.clear_faults()  # ilert is back before the broker is
        wait_until(lambda: len(sandbox.bodies(key)) >= 4, timeout=30,
                   what="deliveries while the broker is down")
        broker.restart()
        wait_until(lambda: sum(map(len, received_by_alert(sandbox, key).values())) >= 20,
                   timeout=30, what="all 20 events")
        assert daemon.alive()
        wait_until(lambda: metric(port, "ilagent_mqtt_unacknowledged") == 0, timeout=20,
                   what="every message acknowledged")
        assert "session resumed" in daemon.output()
        assert received_by_alert(sandbox, key) == {f"a{a}": list(range(5)) for a in range(4)}
    finally:
        broker.stop()


def test_a_message_finished_while_the_broker_is_down_is_not_delivered_again(
        sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """Mosquitto stops for 3 s while an alert's ALERT is with ilert and its RESOLVE waits
    behind it: the ALERT ends during the outage, and its resend after the reconnect is
    acknowledged, not delivered again behind the RESOLVE (3 rounds out of 3)."""
    import mosquitto as broker_tool

    broker = broker_tool.start(tmp_path / "own-broker")
    try:
        topic, port = unique("events"), __import__("broker").free_port()
        daemon = run_ilagent(*mqtt_args(broker.ports["plain"], topic, "--mqtt_qos", "1",
                                        "-p", str(port), "--http_host", "127.0.0.1",
                                        "--intake", "off"))
        wait_until(lambda: subscribed(daemon), timeout=20, what="the subscription")
        for _round in range(3):
            key, alert = unique("il1api"), unique("alert")
            sandbox.fault(latency_ms=2000, integration_key=key, count=1)  # the ALERT, held
            sandbox.fault(status=503, integration_key=key)  # the RESOLVE, until cleared
            subscriptions = daemon.output().count("MQTT subscribed")
            publish(broker.ports["plain"], topic, [
                {"integrationKey": key, "eventType": event_type, "alertKey": alert,
                 "summary": f"{alert} {event_type}"} for event_type in ("ALERT", "RESOLVE")])
            wait_until(lambda: sandbox_in_flight(sandbox) >= 1, timeout=10,
                       what="the ALERT with ilert")
            broker.stop()
            stopped = time.monotonic()
            wait_until(lambda k=key: event_types(sandbox, k) == ["ALERT"], timeout=10,
                       what="the ALERT accepted while the broker is down")
            wait_until(lambda s=stopped: time.monotonic() - s >= 3, timeout=5, interval=0.2,
                       what="3 s of broker downtime")
            broker.start_again()
            wait_until(lambda n=subscriptions: daemon.output().count("MQTT subscribed") > n,
                       timeout=35, what="the subscription after the broker came back")
            # the broker's resends arrive before the SUBACK; two more tries of the RESOLVE on
            # the new connection leave time for any resend to reach its lane
            tries = refused(sandbox, alert)
            wait_until(lambda a=alert, t=tries: refused(sandbox, a) >= t + 2, timeout=20,
                       what="the RESOLVE tried again after the reconnect")
            sandbox.clear_faults()
            wait_until(lambda k=key: "RESOLVE" in event_types(sandbox, k), timeout=30,
                       what="the RESOLVE")
            wait_until(lambda: metric(port, "ilagent_mqtt_unacknowledged") == 0, timeout=30,
                       what="both messages acknowledged")
            assert event_types(sandbox, key)[-1] == "RESOLVE", event_types(sandbox, key)
            # the resends were recognised, not handled as new messages
            consumed = metric(port, 'ilagent_messages_consumed_total{source="mqtt"}')
            assert consumed == 2 * (_round + 1), consumed
        assert daemon.alive()
    finally:
        broker.stop()


def sandbox_in_flight(sandbox: Sandbox) -> int:
    """Requests the sandbox holds (a scripted latency) and has not answered yet."""
    return int(http("GET", f"{sandbox.url}/sandbox/stats")[1]["inFlight"])


def event_types(sandbox: Sandbox, key: str) -> list[str]:
    return [e["eventType"] for e in sandbox.events(key)]


def refused(sandbox: Sandbox, alert: str) -> int:
    """How many requests for ``alert`` the sandbox answered with a scripted 503."""
    return sum(1 for r in sandbox.requests() if r.get("status") == 503
               and isinstance(r.get("body"), dict) and r["body"].get("alertKey") == alert)


QUEUE_FILE_LIMIT = 256 * 1024  # bytes any file of the daemon may grow to: the queue file fills


def file_size_limit(limit: int) -> Callable[[], None]:
    """A ``preexec_fn`` for a daemon whose files cannot grow beyond ``limit`` bytes: writes
    past it fail (EFBIG) as on a full disk; root ignores read-only files, not this."""
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_buffer_mode_with_a_full_disk_stops_within_the_shutdown_timeout(
        mosquitto: Any, sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """With --mqtt_buffer and a queue file that cannot grow, failing writes are summarised
    while the daemon runs; SIGTERM then ends within --shutdown_timeout with one ERROR line
    saying how many messages were not queued and that the broker sends them again."""
    topic, key, shutdown_timeout = unique("events"), unique("il1api"), 3.0
    daemon = run_ilagent(*mqtt_args(mosquitto.ports["plain"], topic, "--mqtt_qos", "1",
                                    "--mqtt_buffer", "-f", str(tmp_path / "spool.db3"),
                                    "--shutdown_timeout", str(shutdown_timeout)),
                         preexec_fn=file_size_limit(QUEUE_FILE_LIMIT))
    wait_until(lambda: subscribed(daemon), timeout=20, what="the subscription")
    sandbox.fault(status=503, integration_key=key)  # queued events stay in the file
    published = 0

    def full() -> bool:
        nonlocal published
        publish(mosquitto.ports["plain"], topic, [
            {"integrationKey": key, "alertKey": f"a{published + n}", "summary": "x" * 2000}
            for n in range(20)])
        published += 20
        return " ERROR ilagent.mqtt" in daemon.output()

    wait_until(full, timeout=60, interval=0.1, what="queue-file writes failing")
    failing = time.monotonic()
    wait_until(lambda: time.monotonic() - failing >= 3, timeout=5, interval=0.2,
               what="3 s of failing writes")
    lines = [li for li in daemon.output().splitlines() if " ERROR ilagent.mqtt" in li]
    assert len(lines) == 1, f"{len(lines)} lines for {published} messages in 3 s"
    started = time.monotonic()
    assert daemon.stop(timeout=shutdown_timeout + 30) == 0
    elapsed = time.monotonic() - started
    output = daemon.output()
    assert elapsed <= shutdown_timeout + 2, f"{elapsed:.1f} s\n{output[-3000:]}"
    [line] = [li for li in output.splitlines() if "could not be queued" in li]
    assert " ERROR " in line and "broker sends them again" in line, line
    assert "Traceback" not in output, output[-3000:]
    print(f"{published} published, stopped in {elapsed:.1f} s: {line.split(': ', 1)[1]}")


def test_each_dead_letter_is_one_error_line_without_raw_control_bytes(
        mosquitto: Any, sandbox: Sandbox, run_ilagent: Any) -> None:
    """A message ilert refuses and one that is not JSON (with a NUL and a bell in it): one
    ERROR line each, and no raw control byte in the log (grep: "binary file matches")."""
    topic, key = unique("deadletters"), unique("il1api")
    daemon = run_ilagent(*mqtt_args(mosquitto.ports["plain"], topic, "--mqtt_qos", "1"))
    wait_until(lambda: subscribed(daemon), timeout=20, what="the subscription")
    sandbox.fault(status=400, integration_key=key)
    publish(mosquitto.ports["plain"], topic, [
        {"integrationKey": key, "alertKey": "refused", "summary": "refused"},
        b'{"broken": "\x00\x07'])
    wait_until(lambda: "invalid_json" in daemon.output() and "HTTP 400" in daemon.output(),
               timeout=20, what="both dead letters logged")
    time.sleep(1)  # a second line of the same dead letter would come at once
    errors = [line for line in daemon.output().splitlines() if " ERROR " in line]
    assert len(errors) == 2, errors
    assert any(f"dead letter MQTT {topic}: invalid_json: not valid JSON: " in line
               for line in errors), errors
    assert "\x00" not in daemon.output() and "\x07" not in daemon.output()
    assert "\\x00\\x07" in daemon.output()
