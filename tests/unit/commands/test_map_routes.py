"""`ilagent --config FILE map`: every route over sample messages, what each made of it, and
`--check` for a sample no route takes or an event missing a mapped field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROUTES = """
[[route]]
name = "line3"
kafka_topics = ["plant.line3"]
integration_key = "il1apiline3key000000001"
match = { path = "type", equals = "ALARM" }
alert_key = "line3-{{ payload.mCode }}"
summary = "Line 3 / press {{ payload.mCode }}: {{ payload.text | default('alarm') }}"

[[route]]
name = "audit"
kafka_topics = ["plant.line3"]
match = { path = "audit", exists = true }
summary = "audit {{ payload.mCode }}"

[[route]]
name = "mqtt-only"
mqtt_topics = ["factory/#"]
integration_key = "il1apimqttonly000000001"
"""
GOOD = '{"type": "ALARM", "mCode": "M1", "text": "door open"}'


def ilagent_map(tmp_path: Path, lines: list[str], *args: str) -> tuple[int, list[dict], str]:
    config = tmp_path / "ilagent.toml"
    config.write_text(ROUTES)
    samples = tmp_path / "samples.jsonl"
    samples.write_text("\n".join(lines) + "\n")
    done = subprocess.run([sys.executable, "-m", "ilagent", "--config", str(config), "map",
                           "-e", "plant.line3", *args, str(samples)],
                          capture_output=True, text=True, timeout=60)
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def test_each_sample_shows_the_route_that_took_it_and_its_event(tmp_path: Path) -> None:
    code, results, stderr = ilagent_map(tmp_path, [GOOD, '{"type": "INFO"}', "not json"])
    assert code == 0, stderr
    taken, passed, broken = results
    assert taken["line"] == 1 and taken["result"] == "events"
    (event,) = taken["events"]
    assert event["route"] == "line3"
    assert event["event"]["summary"] == "Line 3 / press M1: door open"
    assert event["event"]["alertKey"] == "line3-M1"
    assert event["url"].endswith("/v1/events/kafka/il1apiline3key000000001")
    assert "missing" not in event
    assert passed["result"] == "dropped" and passed["reason"] == "no_route"
    assert passed["passedOver"] == [{"route": "line3", "why": "line3: not type = 'ALARM'"},
                                    {"route": "audit", "why": "audit: not audit exists"}]
    assert broken["reason"] == "invalid_json"


def test_fan_out_and_a_route_refusing_an_event(tmp_path: Path) -> None:
    code, (result,), _ = ilagent_map(tmp_path, ['{"type": "ALARM", "mCode": "M2", "audit": 1}'])
    assert code == 0
    assert [e["route"] for e in result["events"]] == ["line3"]
    # audit has no key of its own and the message none: a dead letter in the daemon
    assert result["refused"][0]["route"] == "audit"
    assert result["refused"][0]["reason"] == "no_key"


def test_check_fails_on_no_route_and_on_a_missing_field(tmp_path: Path) -> None:
    assert ilagent_map(tmp_path, [GOOD], "--check")[0] == 0
    assert ilagent_map(tmp_path, [GOOD, '{"type": "INFO"}'], "--check")[0] == 1
    code, (result,), _ = ilagent_map(tmp_path, ['{"type": "ALARM", "text": "x"}'], "--check")
    assert code == 1 and result["events"][0]["missing"] == ["summary", "alertKey"]


def test_the_source_decides_which_routes_read_the_topic(tmp_path: Path) -> None:
    code, (result,), _ = ilagent_map(tmp_path, [GOOD], "--source", "mqtt", "-e", "factory/a")
    assert code == 0
    assert [e["route"] for e in result["events"]] == ["mqtt-only"]
    assert result["events"][0]["url"].endswith("/v1/events/mqtt/il1apimqttonly000000001")


def test_routes_with_mapping_flags_or_policy_are_usage_errors(tmp_path: Path) -> None:
    code, _, stderr = ilagent_map(tmp_path, [GOOD], "--map_key_summary", "text")
    assert code == 2 and "both say how to map" in stderr and "Traceback" not in stderr
    code, _, stderr = ilagent_map(tmp_path, [GOOD], "--policy")
    assert code == 2 and "--policy maps policy messages" in stderr
