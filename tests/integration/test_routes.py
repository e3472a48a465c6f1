"""``[[route]]`` tables on real brokers (issue 23): three routes over two Kafka topics and one
MQTT topic in one daemon, a message two routes take committed only after both its events, and a
SIGKILL mid-stream that loses no route's event.

Each test has its own topics, group, client id and integration keys; pacing is off (``FAST``).
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

from helpers import (
    FAST,
    Sandbox,
    committed,
    committed_maps,
    create_topic,
    http,
    metric,
    produce,
    produce_slowly,
    publish,
    subscribed,
    unique,
    wait_until,
    write_routes,
)


def press(topic: str, key: str) -> dict[str, Any]:
    """Route ``press``: alarms of one Kafka topic, templated, SET opens and CLR resolves."""
    return {"name": "press", "kafka_topics": [topic], "integration_key": key,
            "match": [{"path": "type", "equals": "ALARM"},
                      {"path": "state", "in": ["SET", "CLR"]}],
            "event_type": {"path": "state", "alert": "SET", "resolve": "CLR"},
            "summary": "Line 3 / press {{ payload.mCode }}: {{ payload.text }}",
            "alert_key": "line3-{{ payload.mCode }}"}


def quality(topics: list[str], key: str) -> dict[str, Any]:
    """Route ``quality``: any message with a ``quality`` field, of any of ``topics``."""
    return {"name": "quality", "kafka_topics": topics, "integration_key": key,
            "match": {"path": "quality", "exists": True},
            "priority": {"path": "quality", "high": ["crack"], "default": "LOW"},
            "summary": "QA {{ payload.quality | upper }} on {{ topic }}",
            "alert_key": "qa-{{ payload.part }}"}


def kafka_args(config: Path, bootstrap: str, group: str, *extra: str) -> list[str]:
    return ["--config", str(config), "daemon", "-v", "-v", "--kafka_brokers", bootstrap,
            "--kafka_group_id", group, "--kafka_offset_reset", "earliest", *FAST, *extra]


def assigned(daemon: Any, *topics: str) -> bool:
    """True once the daemon logged a partition of each topic assigned to it."""
    lines = [line for line in daemon.output().splitlines() if ": assigned " in line]
    return all(any(f" {topic}[" in line for line in lines) for topic in topics)


def sent(sandbox: Sandbox, key: str) -> list[tuple[str, str, str]]:
    """What ilert received under ``key``: (eventType, alertKey, summary) in arrival order."""
    return [(b["eventType"], b.get("alertKey", ""), b["summary"]) for b in sandbox.bodies(key)]


def refusals(sandbox: Sandbox) -> int:
    """How many requests the sandbox answered 503 (the scripted fault)."""
    return sum(r["status"] == 503 for r in sandbox.requests())


def test_three_routes_over_kafka_and_mqtt_each_send_under_their_own_key(
        kafka_bootstrap: str, mosquitto: Any, sandbox: Sandbox, run_ilagent: Any,
        tmp_path: Path) -> None:
    """One daemon, three routes: each route's events reach ilert under its own key with their
    rendered summaries and alert keys, a message two routes take is sent once under each key,
    and messages no route takes are sent nowhere."""
    import broker

    t1, t2 = (create_topic(kafka_bootstrap, unique(name)) for name in ("press", "qa"))
    hall = f"hall/{unique('h')}"
    key_a, key_b, key_c = unique("il1apiA"), unique("il1apiB"), unique("il1apiC")
    config = write_routes(
        tmp_path / "routes.toml", press(t1, key_a), quality([t1, t2], key_b),
        {"name": "hall", "mqtt_topics": [f"{hall}/+"], "integration_key": key_c,
         "match": {"path": "value", "exists": True},
         "summary": "Hall {{ payload.sensor }}: {{ payload.value }} °C",
         "alert_key": "hall-{{ payload.sensor }}"})
    port, group = broker.free_port(), unique("g")
    daemon = run_ilagent(*kafka_args(
        config, kafka_bootstrap, group, "-m", "127.0.0.1", "-q",
        str(mosquitto.ports["plain"]), "--mqtt_qos", "1", "-n", unique("ilagent"),
        "-p", str(port), "--http_host", "127.0.0.1"))
    wait_until(lambda: subscribed(daemon) and assigned(daemon, t1, t2), timeout=60,
               what="the MQTT subscription and both Kafka topics assigned")

    produce(kafka_bootstrap, t1, [
        {"type": "ALARM", "state": "SET", "mCode": "M1", "text": "door open"},   # press
        {"type": "INFO", "state": "SET", "mCode": "M1", "text": "shift change"},  # none
        {"type": "ALARM", "state": "SET", "mCode": "M2", "text": "jam",          # both
         "quality": "crack", "part": "P7"},
        {"type": "ALARM", "state": "ACK", "mCode": "M1"},                          # none
        {"type": "ALARM", "state": "CLR", "mCode": "M1", "text": "door closed"},  # press
    ])
    produce(kafka_bootstrap, t2, [
        {"quality": "scratch", "part": "P8"},                                      # quality
        {"type": "ALARM", "state": "SET", "mCode": "M9", "text": "press reads no t2"},
    ])
    # in order on one topic: once the last one's event arrived the others were read
    publish(mosquitto.ports["plain"], f"{hall}/h1", [
        {"sensor": "h1"},                                                          # none
        {"type": "ALARM", "state": "SET", "mCode": "M5", "text": "press reads no MQTT"},
        {"sensor": "h1", "value": 81.5},                                           # hall
    ])

    wait_until(lambda: len(sandbox.events()) >= 6, what="six events")
    wait_until(lambda: committed(kafka_bootstrap, group, t1) == [5]
               and committed(kafka_bootstrap, group, t2) == [2],
               what="every Kafka message finished and committed")
    assert sent(sandbox, key_a) == [
        ("ALERT", "line3-M1", "Line 3 / press M1: door open"),
        ("ALERT", "line3-M2", "Line 3 / press M2: jam"),
        ("RESOLVE", "line3-M1", "Line 3 / press M1: door closed")]
    assert sorted(sent(sandbox, key_b)) == [("ALERT", "qa-P7", f"QA CRACK on {t1}"),
                                            ("ALERT", "qa-P8", f"QA SCRATCH on {t2}")]
    assert {b["alertKey"]: b["priority"] for b in sandbox.bodies(key_b)} == {
        "qa-P7": "HIGH", "qa-P8": "LOW"}
    assert sent(sandbox, key_c) == [("ALERT", "hall-h1", "Hall h1: 81.5 °C")]
    assert len(sandbox.events()) == 6, "a message no route takes was sent"
    for route, source, count in (("press", "kafka", 3), ("quality", "kafka", 2),
                                 ("hall", "mqtt", 1)):
        taken = f'ilagent_route_matched_total{{route="{route}",source="{source}"}}'
        assert metric(port, taken) == count, route
    assert daemon.stop() == 0


def test_a_message_two_routes_take_is_committed_only_after_both_events(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """While one of a message's two events is refused (503) the partition's committed offset
    stays at that message, later messages listed as done above it; once the second event is
    delivered the offset moves past it, and neither event was sent twice."""
    from ilagent import offsetmap

    topic, group = create_topic(kafka_bootstrap, unique("fanout")), unique("g")
    key_a, key_b = unique("il1apiA"), unique("il1apiB")
    config = write_routes(tmp_path / "routes.toml", press(topic, key_a),
                          quality([topic], key_b))
    sandbox.fault(status=503, integration_key=key_b)  # until cleared: the moment in between
    daemon = run_ilagent(*kafka_args(config, kafka_bootstrap, group))
    wait_until(lambda: assigned(daemon, topic), timeout=60, what="the assignment")

    # step 1: the message before goes through alone and is committed
    produce(kafka_bootstrap, topic, [{"type": "ALARM", "state": "SET", "mCode": "M1",
                                      "text": "before"}])
    wait_until(lambda: committed(kafka_bootstrap, group, topic) == [1],
               what="the first message committed")

    # step 2: offset 1 is taken by both routes; quality's event is refused, press's delivered,
    # and offset 2 (press only) is delivered after it
    produce(kafka_bootstrap, topic, [
        {"type": "ALARM", "state": "SET", "mCode": "M2", "text": "both", "quality": "crack",
         "part": "P1"},
        {"type": "ALARM", "state": "SET", "mCode": "M3", "text": "after"}])
    wait_until(lambda: len(sandbox.events(key_a)) == 3 and refusals(sandbox) >= 2,
               what="press's three events delivered and quality's retried")

    def counts_offset_2() -> tuple[int, list[tuple[int, int]]] | None:
        """The first commit that counts offset 2 as finished: position and finished ranges."""
        position, metadata = committed_maps(kafka_bootstrap, group, topic)[0]
        done = offsetmap.decode(metadata, position)
        return (position, done) if position > 2 or done == [(2, 3)] else None

    assert wait_until(counts_offset_2, what="a commit counting offset 2 as finished") == (
        1, [(2, 3)]), "committed past a message whose second event is not delivered"
    more = refusals(sandbox) + 2
    wait_until(lambda: refusals(sandbox) >= more, what="two more refused attempts")
    assert committed(kafka_bootstrap, group, topic) == [1], "committed past a pending event"
    assert sandbox.events(key_b) == []

    # step 3: ilert takes quality's event; the offset moves past the message
    sandbox.clear_faults()
    wait_until(lambda: len(sandbox.events(key_b)) == 1, what="quality's event")
    wait_until(lambda: committed(kafka_bootstrap, group, topic) == [3],
               what="the offset past the fanned-out message")
    assert sent(sandbox, key_b) == [("ALERT", "qa-P1", "QA CRACK on " + topic)]
    assert [s for _t, _k, s in sent(sandbox, key_a)] == [
        "Line 3 / press M1: before", "Line 3 / press M2: both", "Line 3 / press M3: after"]
    assert daemon.stop() == 0


def test_a_sigkill_mid_stream_loses_no_route_event(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """600 messages produced while the daemon runs, each for press and every third also for
    quality, the daemon SIGKILLed mid-way and started again with the same group: every event
    of each route arrives at least once."""
    topic, group = create_topic(kafka_bootstrap, unique("routekill")), unique("g")
    key_a, key_b = unique("il1apiA"), unique("il1apiB")
    route_a = {**press(topic, key_a), "summary": "press {{ payload.mCode }}: {{ payload.id }}"}
    route_b = {**quality([topic], key_b), "summary": "QA {{ payload.id }}",
               "alert_key": "qa-{{ payload.id }}"}
    config = write_routes(tmp_path / "routes.toml", route_a, route_b)
    messages = [{"id": f"m{n}", "type": "ALARM", "state": "SET", "mCode": f"M{n % 20}",
                 **({"quality": "dent", "part": f"P{n}"} if n % 3 == 0 else {})}
                for n in range(600)]
    wanted_a = {f"press {m['mCode']}: {m['id']}" for m in messages}
    wanted_b = {f"QA {m['id']}" for m in messages if "quality" in m}
    sandbox.fault(latency_ms=10)  # slow enough to be killed with events in flight
    args = kafka_args(config, kafka_bootstrap, group)
    daemon = run_ilagent(*args)
    wait_until(lambda: assigned(daemon, topic), timeout=60, what="the assignment")

    def accepted() -> int:  # cheap to ask often, unlike the events themselves
        return int(http("GET", f"{sandbox.url}/sandbox/stats")[1]["accepted"])

    failures: list[str] = []
    producer = threading.Thread(target=produce_slowly, args=(kafka_bootstrap, topic, messages),
                                kwargs={"per_second": 200, "failures": failures,
                                        "key_field": "mCode"})
    producer.start()
    try:
        wait_until(lambda: accepted() >= 200, timeout=60, interval=0.02,
                   what="200 events before the kill")
        daemon.kill()
        killed_at = accepted()
        daemon = run_ilagent(*args)
    finally:
        producer.join()
    assert not failures, failures
    assert killed_at < len(wanted_a) + len(wanted_b), "the kill came after the last event"

    def arrived(key: str) -> set[str]:
        return {b["summary"] for b in sandbox.bodies(key)}

    wait_until(lambda: arrived(key_a) >= wanted_a and arrived(key_b) >= wanted_b, timeout=120,
               what="every event of both routes")
    assert arrived(key_a) == wanted_a and arrived(key_b) == wanted_b
    wait_until(lambda: committed(kafka_bootstrap, group, topic) == [600],
               what="every offset committed")
    twice = Counter(b["summary"] for key in (key_a, key_b) for b in sandbox.bodies(key))
    print(f"600 messages (800 events), SIGKILL after {killed_at} events: "
          f"{sum(twice.values()) - 800} delivered twice (at least once)")
    assert daemon.stop() == 0


def test_an_mqtt_message_two_routes_take_is_acknowledged_only_after_both_events(
        mosquitto: Any, sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """An MQTT message two routes take, one event delivered and the other refused (503), stays
    unacknowledged; SIGKILLed then, the restarted daemon gets it again from the broker and the
    refused event arrives."""
    import broker

    hall, mqtt_port, port = f"hall/{unique('h')}", mosquitto.ports["plain"], broker.free_port()
    key_a, key_b = unique("il1apiA"), unique("il1apiB")
    config = write_routes(
        tmp_path / "routes.toml",
        {"name": "temperature", "mqtt_topics": [f"{hall}/+"], "integration_key": key_a,
         "summary": "Hall {{ payload.sensor }}: {{ payload.value }} °C",
         "alert_key": "temp-{{ payload.sensor }}"},
        {"name": "maintenance", "mqtt_topics": [f"{hall}/+"], "integration_key": key_b,
         "summary": "Check sensor {{ payload.sensor }}", "alert_key": "check-{{ payload.sensor }}"})
    sandbox.fault(status=503, integration_key=key_b)
    args = ["--config", str(config), "daemon", "-v", "-v", "-m", "127.0.0.1", "-q",
            str(mqtt_port), "--mqtt_qos", "1", "-n", unique("ilagent"), "-p", str(port),
            "--http_host", "127.0.0.1", *FAST]
    daemon = run_ilagent(*args)
    wait_until(lambda: subscribed(daemon), timeout=20, what="the subscription")
    publish(mqtt_port, f"{hall}/h1", [{"sensor": "h1", "value": 90}])
    wait_until(lambda: len(sandbox.events(key_a)) == 1
               and refusals(sandbox) >= 2,
               what="temperature's event delivered and maintenance's retried")
    assert metric(port, "ilagent_mqtt_unacknowledged") == 1

    daemon.kill()
    sandbox.clear_faults()
    run_ilagent(*args)  # same client id: the session and its unacknowledged message
    wait_until(lambda: len(sandbox.events(key_b)) == 1, what="maintenance's event")
    assert sent(sandbox, key_b) == [("ALERT", "check-h1", "Check sensor h1")]
    # the broker sent the whole message again, so temperature's event went twice
    assert sent(sandbox, key_a) == [("ALERT", "temp-h1", "Hall h1: 90 °C")] * 2
