"""The documented ilagent command lines against a real broker and the sandbox (issue: bridge)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers import (
    Sandbox,
    committed,
    create_topic,
    http,
    produce,
    status_or_none,
    unique,
    wait_until,
)

GUIDE_MAPPING = [
    "--map_key_alert_key", "mCode", "--map_key_summary", "comment", "--map_key_etype", "state",
    "--map_val_etype_alert", "SET", "--map_val_etype_accept", "ACK",
    "--map_val_etype_resolve", "CLR", "--filter_key", "type", "--filter_val", "ALARM",
]


def assigned(daemon: Any, topic: str) -> bool:
    return f"assigned {topic}[" in daemon.output()


def test_first_guide_command_serves_http_and_delivers(kafka_bootstrap: str, sandbox: Sandbox,
                                                      run_ilagent: Any) -> None:
    """`daemon -p 8977 -v -v --kafka_brokers … --kafka_group_id … -e topic` delivers and serves."""
    import broker

    topic = create_topic(kafka_bootstrap, unique("guide1"))
    port = broker.free_port()
    daemon = run_ilagent("daemon", "-p", str(port), "-v", "-v", "--kafka_brokers",
                         kafka_bootstrap, "--kafka_group_id", unique("ilagentsub"), "-e", topic)
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: status_or_none("GET", f"{base}/ready") == 204, timeout=60, what="/ready 204")
    assert http("GET", f"{base}/health")[0] == 204
    status, info = http("GET", f"{base}/")
    assert status == 200 and info["name"] == "ilagent"
    key = unique("il1api")
    produce(kafka_bootstrap, topic, [{"integrationKey": key, "eventType": "ALERT",
                                      "summary": "Hey from Kafka"}], key=b"m-1")
    events = wait_until(lambda: sandbox.events(key), what="the event at the sandbox")
    assert events[0]["body"] == {"integrationKey": key, "eventType": "ALERT",
                                 "summary": "Hey from Kafka",
                                 "customDetails": {"messageKey": "m-1", "topic": topic}}
    request = [r for r in sandbox.requests() if r["path"].startswith("/api/v1/events/kafka/")]
    assert request and request[0]["userAgent"].startswith("ilagent-py/")
    assert daemon.stop() == 0


def test_second_guide_command_maps_filters_and_commits(kafka_bootstrap: str, sandbox: Sandbox,
                                                       run_ilagent: Any) -> None:
    """The guide's mapping flags turn SET/ACK/CLR into ALERT/ACCEPT/RESOLVE and skip type INFO."""
    topic = create_topic(kafka_bootstrap, unique("guide2"))
    group = unique("ilagentsub")
    daemon = run_ilagent("daemon", "-v", "-v", "--kafka_brokers", kafka_bootstrap,
                         "--kafka_group_id", group, "-e", topic, "--event_key", "il1api123...",
                         *GUIDE_MAPPING)
    wait_until(lambda: assigned(daemon, topic), timeout=60, what="partition assignment")
    produce(kafka_bootstrap, topic, [
        {"type": "ALARM", "mCode": "M1", "comment": "door open", "state": "SET"},
        {"type": "INFO", "mCode": "M1", "comment": "just saying", "state": "SET"},
        {"type": "ALARM", "mCode": "M1", "comment": "seen", "state": "ACK"},
        {"type": "ALARM", "mCode": "M1", "comment": "door closed", "state": "CLR"},
        {"type": "INFO", "mCode": "M2", "comment": "noise", "state": "SET"},
    ])
    wait_until(lambda: committed(kafka_bootstrap, group, topic) == [5], timeout=30,
               what="offsets committed past every message, the filtered ones included")
    bodies = sandbox.bodies("il1api123...")
    assert [(b["eventType"], b["alertKey"], b["summary"]) for b in bodies] == [
        ("ALERT", "M1", "door open"), ("ACCEPT", "M1", "seen"), ("RESOLVE", "M1", "door closed")]
    assert all(b["integrationKey"] == "il1api123..." for b in bodies)
    assert [a["status"] for a in sandbox.alerts()] == ["RESOLVED"]
    # at -vv a filtered message is logged; the second within 30 s is only counted
    assert f"filtered {topic}[0]@1: 'type' is not 'ALARM'" in daemon.output()
    assert "il1api123..." not in daemon.output(), "the integration key leaked into the log"
    # no -p, no HTTP server: aiohttp was never loaded (the README, Install); this test's
    # own process has its compiled parser mapped, so the check can tell
    import aiohttp  # noqa: F401  (maps its compiled parser into this process)

    assert "/aiohttp/_http_parser" in Path("/proc/self/maps").read_text()
    assert "/aiohttp/" not in Path(f"/proc/{daemon.proc.pid}/maps").read_text()
    assert daemon.stop() == 0


@pytest.mark.parametrize("bad", [
    pytest.param(b'{"eventType": "ALERT", "summary": "no key anywhere"}', id="no-key"),
    pytest.param(b'{"integrationKey": "k", "eventType": ', id="invalid-json"),
    pytest.param(b'[{"integrationKey": "k", "eventType": "ALERT", "summary": "x"}]', id="array"),
    pytest.param(bytes(range(256)), id="binary"),
    pytest.param(b"", id="empty"),
])
def test_bad_messages_neither_crash_nor_block(kafka_bootstrap: str, sandbox: Sandbox,
                                             run_ilagent: Any, bad: bytes) -> None:
    """A message that cannot become an event is logged and committed; later ones still flow."""
    topic = create_topic(kafka_bootstrap, unique("bad"))
    group = unique("g")
    daemon = run_ilagent("daemon", "-v", "-v", "--kafka_brokers", kafka_bootstrap,
                         "--kafka_group_id", group, "-e", topic)
    wait_until(lambda: assigned(daemon, topic), timeout=60, what="partition assignment")
    key = unique("il1api")
    produce(kafka_bootstrap, topic, [
        bad, {"integrationKey": key, "eventType": "ALERT", "summary": "after the bad one"}])
    wait_until(lambda: sandbox.events(key), what="the good message after the bad one")
    wait_until(lambda: committed(kafka_bootstrap, group, topic) == [2], what="both committed")
    assert daemon.alive()
    assert "dead letter " + topic + "[0]@0" in daemon.output()
    assert "Traceback" not in daemon.output()
    assert daemon.stop() == 0


def test_outage_loses_nothing_keeps_order_and_survives_sigkill(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """ilert failing with 503 for 20 s: no commit before delivery, SIGKILL+restart loses nothing, order kept."""
    topic = create_topic(kafka_bootstrap, unique("outage"))
    group = unique("g")
    key = unique("il1api")
    args = ["daemon", "-v", "-v", "--kafka_brokers", kafka_bootstrap, "--kafka_group_id", group,
            "-e", topic, "--retry_initial_delay", "0.2", "--retry_max_delay", "1",
            "--rate_limit_per_key", "0", "--rate_limit_total", "0"]  # the outage, not the pacing
    daemon = run_ilagent(*args)
    wait_until(lambda: assigned(daemon, topic), timeout=60, what="partition assignment")
    wait_until(lambda: committed(kafka_bootstrap, group, topic) == [0],
               what="the new group's start position to be committed")

    sandbox.fault(status=503, duration_s=20)
    events = [{"integrationKey": key, "eventType": "ALERT", "alertKey": "door-7",
               "summary": f"event {i}"} for i in range(20)]
    produce(kafka_bootstrap, topic, events[:10])
    wait_until(lambda: sum(r["status"] == 503 for r in sandbox.requests()) >= 3,
               what="the daemon retrying against 503s")
    assert committed(kafka_bootstrap, group, topic) == [0], "committed before delivery"
    daemon.kill()

    restarted = run_ilagent(*args)
    produce(kafka_bootstrap, topic, events[10:])
    wait_until(lambda: len(sandbox.events(key)) >= 20, timeout=60,
               what="all 20 events after the outage")
    assert restarted.alive()
    summaries = [b["summary"] for b in sandbox.bodies(key)]
    assert summaries == [f"event {i}" for i in range(20)]
    wait_until(lambda: committed(kafka_bootstrap, group, topic) == [20], what="final commit")
    assert restarted.stop() == 0


def test_heartbeat_topic_pings_the_right_endpoint(kafka_bootstrap: str, sandbox: Sandbox,
                                                  run_ilagent: Any) -> None:
    """Heartbeat-topic messages ping: il1hbt keys by GET /heartbeats, others by HEAD /pings."""
    topic = create_topic(kafka_bootstrap, unique("hbt"))
    daemon = run_ilagent("daemon", "-v", "-v", "--kafka_brokers", kafka_bootstrap,
                         "--kafka_group_id", unique("g"), "-r", topic)
    wait_until(lambda: assigned(daemon, topic), timeout=60, what="partition assignment")
    legacy, modern = unique("il1hbt"), unique("ih2:900:tenant")
    produce(kafka_bootstrap, topic, [{"integrationKey": legacy}, {"apiKey": modern},
                                     b"not a heartbeat"])

    def pings() -> list[tuple[str, str]]:
        return [(r["method"], r["path"]) for r in sandbox.requests()
                if "/heartbeats/" in r["path"] or "/pings/" in r["path"]]

    found = wait_until(lambda: len(pings()) >= 2 and pings(), what="two pings")
    assert ("GET", f"/api/heartbeats/{legacy}") in found or any(
        m == "GET" and p.startswith("/api/heartbeats/") for m, p in found)
    assert any(m == "HEAD" and p.startswith("/api/pings/") for m, p in found)
    assert daemon.stop() == 0


def test_event_subcommand_exit_codes(sandbox: Sandbox, run_ilagent: Any) -> None:
    """`ilagent event -k K -t ALERT -s hi` exits 0 on 202 and 1 on a 400 or an unreachable ilert."""
    import broker

    key = unique("il1api")
    ok = run_ilagent("event", "-k", key, "-t", "ALERT", "-s", "hi")
    assert ok.proc.wait(30) == 0, ok.output()
    (body,) = sandbox.bodies(key)  # an ALERT without -i gets a key ilagent makes (and prints)
    assert body == {"integrationKey": key, "eventType": "ALERT", "summary": "hi",
                    "alertKey": body["alertKey"]}
    assert body["alertKey"].startswith("ilagent-")

    refused = run_ilagent("event", "-k", key, "-t", "RESOLVE", "-i", "no-such-alert")
    assert refused.proc.wait(30) == 1
    assert "HTTP 400" in refused.output() and "NO_OPEN_ALERT_WITH_KEY" in refused.output()

    closed = f"http://127.0.0.1:{broker.free_port()}/api"
    unreachable = run_ilagent("event", "-k", key, "-t", "ALERT", "-s", "hi", "--retries", "0",
                              env={"ILERT_API_URL": closed})
    assert unreachable.proc.wait(30) == 1
    out = unreachable.output()
    assert "ilert could not be reached" in out and "Traceback" not in out and key not in out


def test_daemon_heartbeat_flag_pings_while_ready(sandbox: Sandbox, run_ilagent: Any) -> None:
    """`daemon -p … -b KEY` pings its own heartbeat at start."""
    import broker

    key = unique("il1hbt")
    daemon = run_ilagent("daemon", "-p", str(broker.free_port()), "-b", key)
    wait_until(lambda: any(r["path"].startswith("/api/heartbeats/") for r in sandbox.requests()),
               what="the daemon's own heartbeat ping")
    assert daemon.stop() == 0


@pytest.mark.parametrize("args", [
    pytest.param(["event", "-k", "k", "-t", "bogus", "-s", "x"], id="unknown-type"),
    pytest.param(["event", "-k", "k", "-t", "ALERT", "-s", "x", "-o", "MEDIUM"], id="priority"),
    pytest.param(["daemon", "--kafka_brokers", "127.0.0.1:1"], id="no-topic"),
    pytest.param(["daemon"], id="nothing-to-run"),
    pytest.param(["daemon", "-p", "not-a-port"], id="bad-port"),
    pytest.param(["daemon", "--kafka-brokers", "b", "-e", "t", "--kafka_config", "novalue"],
                 id="bad-kafka-config"),
    pytest.param([], id="no-subcommand"),
])
def test_usage_errors_are_one_line_and_exit_2(run_ilagent: Any, args: list[str]) -> None:
    """Bad command lines get exit code 2 and a short message, never a traceback."""
    process = run_ilagent(*args)
    assert process.proc.wait(30) == 2
    out = process.output().split("\n", 2)[-1]
    assert "Traceback" not in out
    if args:
        assert len(out.strip().splitlines()) == 1, out


def test_map_command_prints_what_the_daemon_sends(run_ilagent: Any, tmp_path: Any) -> None:
    """`ilagent map` with the guide's flags prints the event and URL, and --check fails on drops."""
    messages = tmp_path / "messages.jsonl"
    messages.write_text(json.dumps(
        {"type": "ALARM", "mCode": "M1", "comment": "door open", "state": "SET"}) + "\n"
        + json.dumps({"type": "INFO"}) + "\n")
    process = run_ilagent("map", "--file", str(messages), "--event_key", "il1api123...",
                          *GUIDE_MAPPING, "--check")
    assert process.proc.wait(30) == 1
    lines = [json.loads(line) for line in process.output().splitlines()
             if line.startswith("{")]
    assert lines[0]["result"] == "event" and lines[0]["event"]["eventType"] == "ALERT"
    assert lines[0]["url"].endswith("/v1/events/kafka/il1api123...")
    assert lines[1]["result"] == "dropped" and lines[1]["reason"] == "filtered"
