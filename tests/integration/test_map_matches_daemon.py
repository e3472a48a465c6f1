"""`ilagent map` prints exactly the events the daemon sends for the same flags and messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers import Sandbox, committed, create_topic, produce, unique, wait_until

MESSAGES: list[Any] = [
    {"type": "ALARM", "mCode": "M1", "comment": "door open", "state": "SET", "site": {"id": 7}},
    {"type": "INFO", "mCode": "M1", "comment": "filtered", "state": "SET"},
    {"type": "ALARM", "mCode": "M1", "comment": "seen", "state": "ACK"},
    {"type": "ALARM", "mCode": "M2", "state": "SET"},  # default summary
    {"type": "ALARM", "mCode": "M2", "comment": "odd", "state": "WHAT"},  # dropped
    {"type": "ALARM", "mCode": "M1", "comment": "closed", "state": "CLR",
     "customDetails": {"line": 3}},
    "not json at all",
    {"type": "ALARM", "mCode": "M2", "comment": "gone", "state": "CLR", "priority": "LOW"},
]


def test_map_output_equals_what_the_daemon_delivers(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """For one set of messages and flags, map's events and URLs are the daemon's, in order per alert."""
    key = unique("il1api")
    flags = ["--event_key", key, "--map_key_alert_key", "mCode", "--map_key_summary", "comment",
             "--map_key_etype", "state", "--map_val_etype_alert", "SET",
             "--map_val_etype_accept", "ACK", "--map_val_etype_resolve", "CLR",
             "--filter_key", "type", "--filter_val", "ALARM"]
    topic = create_topic(kafka_bootstrap, unique("mapcmp"))
    lines = [m if isinstance(m, str) else json.dumps(m) for m in MESSAGES]
    source = tmp_path / "messages.jsonl"
    source.write_text("\n".join(lines) + "\n")
    mapper = run_ilagent("map", "--file", str(source), "-e", topic, "--message_key", "mk",
                         *flags)
    assert mapper.proc.wait(30) == 0
    printed = [json.loads(line) for line in mapper.output().splitlines()
               if line.startswith("{")]
    predicted = [p for p in printed if p["result"] == "event"]
    assert len(printed) == len(MESSAGES) and len(predicted) == 5

    group = unique("g")
    daemon = run_ilagent("daemon", "-v", "-v", "--kafka_brokers", kafka_bootstrap,
                         "--kafka_group_id", group, "--kafka_offset_reset", "earliest",
                         "-e", topic, *flags)
    produce(kafka_bootstrap, topic, [line.encode() for line in lines], key=b"mk")
    wait_until(lambda: committed(kafka_bootstrap, group, topic) == [len(MESSAGES)],
               timeout=60, what="every message handled")
    delivered = [e["body"] for e in sandbox.events(key)]
    # different alerts are delivered concurrently: compare each alert's events in order
    for alert in ("M1", "M2"):
        assert [b for b in delivered if b["alertKey"] == alert] == [
            p["event"] for p in predicted if p["event"]["alertKey"] == alert]
    paths = [r["path"] for r in sandbox.requests() if r["path"].startswith("/api/v1/events/")]
    assert len(paths) == 5
    assert all(p["url"] == f"{sandbox.api_url}/v1/events/kafka/{key}" for p in predicted)
    assert daemon.stop() == 0
