"""``ilagent trace`` on a real broker: the demo's story of one alert, told back from the journal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from helpers import FAST, Sandbox, create_topic, http, produce, secret, unique, wait_until

# the mapping of ilert's Kafka guide, as tools/demo.py runs the daemon
GUIDE_FLAGS = [
    "--map_key_alert_key", "mCode", "--map_key_summary", "comment", "--map_key_etype", "state",
    "--map_val_etype_alert", "SET", "--map_val_etype_accept", "ACK",
    "--map_val_etype_resolve", "CLR", "--filter_key", "type", "--filter_val", "ALARM",
]
# one machine of the demo's story (tools/demo.py) told to its end, with the noise it filters
STORY = [
    {"type": "ALARM", "mCode": "OVEN-03", "comment": "Oven 3 over temperature (312 °C)",
     "state": "SET"},
    {"type": "INFO", "mCode": "OVEN-03", "comment": "Shift change", "state": "SET"},
    {"type": "ALARM", "mCode": "OVEN-03", "comment": "Maintenance on the way", "state": "ACK"},
    {"type": "ALARM", "mCode": "OVEN-03", "comment": "Back to 180 °C", "state": "CLR"},
]


def trace(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ilagent", "trace", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_trace_tells_alert_accept_resolve_with_answers_and_times(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """The demo's ALERT (answered 503, then 202), ACCEPT and RESOLVE of OVEN-03, each at its
    offset, in order, with ilert's answers, times and verdicts; the filtered INFO message is
    not journaled; /trace answers the same behind the token."""
    import broker

    key, token = secret("il1apijournal"), secret("trace-token")
    topic = create_topic(kafka_bootstrap, unique("journal"))
    port, spool = broker.free_port(), tmp_path / "q.db3"
    sandbox.fault(status=503, count=1)
    run_ilagent("daemon", "-p", str(port), "--http_host", "127.0.0.1", "-f", str(spool),
                "--http_token", token, "--kafka_brokers", kafka_bootstrap,
                "--kafka_group_id", unique("g"), "-e", topic, "--kafka_offset_reset",
                "earliest", "--event_key", key, *GUIDE_FLAGS, *FAST)
    produce(kafka_bootstrap, topic, STORY)
    wait_until(lambda: len(sandbox.events(key)) == 3, timeout=60, what="three events at ilert")

    def told() -> subprocess.CompletedProcess[str] | None:
        done = trace("--alert_key", "oven-03", "-f", str(spool))
        return done if done.stdout.count("→ delivered") == 3 else None

    done = wait_until(told, timeout=20, what="the journal's story")  # written every second
    assert done.returncode == 0, done.stderr
    out = done.stdout
    heads = [line.split() for line in out.splitlines() if f"kafka {topic}" in line]
    assert [(words[2], words[4]) for words in heads] == [
        ("ALERT", f"{topic}[0]@0"), ("ACCEPT", f"{topic}[0]@2"), ("RESOLVE", f"{topic}[0]@3")]
    assert "503 retry" in out and out.count("202 delivered") == 3, out
    assert "'Oven 3 over temperature (312 °C)'" in out and key not in out

    listed = json.loads(trace("--since", "10m", "-f", str(spool), "--json").stdout)
    assert [e["eventType"] for e in listed["events"]] == ["ALERT", "ACCEPT", "RESOLVE"]
    first = listed["events"][0]
    assert [a["status"] for a in first["attempts"]] == [503, 202]
    assert all(a["at"] >= first["receivedAt"] for a in first["attempts"])

    url = f"http://127.0.0.1:{port}/trace?alert_key=OVEN-03"
    assert http("GET", url)[0] == 401
    status, body = http("GET", url, headers={"Authorization": f"Bearer {token}"})
    assert status == 200 and [e["verdict"] for e in body["events"]] == ["delivered"] * 3
