"""`ilagent trace --offset` on the session's real broker: one message read again and explained
with today's config, without a consumer group left behind; bad positions are one line, exit 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from helpers import committed, create_topic, produce, unique, write_routes

GUIDE = ["--map_key_alert_key", "mCode", "--map_key_summary", "comment", "--map_key_etype",
         "state", "--map_val_etype_alert", "SET", "--map_val_etype_resolve", "CLR"]
MESSAGES = [{"type": "ALARM", "mCode": "PRESS-01", "comment": "pressure low", "state": "SET"},
            {"type": "INFO", "mCode": "PRESS-01", "comment": "shift change", "state": "SET"},
            "not json at all"]


def ilagent(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ILAGENT_", "ILERT_"))}
    return subprocess.run([sys.executable, "-m", "ilagent", *args], capture_output=True,
                          text=True, timeout=90, check=False, env=env)


def test_trace_offset_explains_each_decision(kafka_bootstrap: str, tmp_path: Path) -> None:
    """With the flags: the INFO message is filtered ("filter type=ALARM did not match: INFO"),
    the ALARM becomes an ALERT to the masked key, the non-JSON one is dead-lettered; with
    [[route]]s, the route that passed it over says why; the read's group is never committed."""
    topic = create_topic(kafka_bootstrap, unique("trace"))
    produce(kafka_bootstrap, topic, MESSAGES)
    key = unique("il1apitrace")
    flags = ["--kafka_brokers", kafka_bootstrap, "--event_key", key, *GUIDE]
    filtered = ilagent("-vv", "trace", "--offset", f"{topic}:0:1", *flags, "--filter_key",
                       "type", "--filter_val", "ALARM")
    assert filtered.returncode == 0, filtered.stderr
    assert "filtered: filter type=ALARM did not match: INFO" in filtered.stdout, filtered.stdout
    [group] = re.findall(r"as group (ilagent-trace-[0-9a-f]+) ", filtered.stderr)
    assert committed(kafka_bootstrap, group, topic) == [-1001]

    mapped = ilagent("trace", "--offset", f"{topic}:0:0", *flags)
    assert mapped.returncode == 0, mapped.stderr
    assert "mapped by the flags: ALERT for alert key PRESS-01 to alert source " \
           f"{'*' * (len(key) - 4)}{key[-4:]}" in mapped.stdout, mapped.stdout
    assert key not in mapped.stdout + mapped.stderr
    dead = ilagent("trace", "--offset", f"{topic}:0:2", *flags)
    assert "dead-lettered: invalid_json" in dead.stdout, dead.stdout

    config = write_routes(tmp_path / "routes.toml", {
        "name": "alarms", "integration_key": key,
        "match": [{"path": "type", "equals": "ALARM"}]})
    routed = ilagent("--config", str(config), "trace", "--offset", f"{topic}:0:1",
                     "--kafka_brokers", kafka_bootstrap)
    assert routed.returncode == 0, routed.stderr
    assert "route alarms did not match: type = 'ALARM' (the message has \"INFO\")" in \
        routed.stdout, routed.stdout
    assert "filtered: no route took it" in routed.stdout


def test_bad_positions_are_one_line_and_exit_2(kafka_bootstrap: str) -> None:
    """A malformed --offset, a topic the cluster does not have, a partition or offset it does
    not hold: one line on stderr naming it, exit 2, nothing on stdout."""
    topic = create_topic(kafka_bootstrap, unique("trace-bad"))
    produce(kafka_bootstrap, topic, MESSAGES[:1])
    missing = unique("trace-missing")
    cases = {
        "nonsense": "is not TOPIC:PARTITION:OFFSET",
        f"{topic}:zero:1": "is not TOPIC:PARTITION:OFFSET",
        f"{missing}:0:0": f"the Kafka topic {missing} does not exist",
        f"{topic}:3:0": f"the Kafka topic {topic} has no partition 3",
        f"{topic}:0:7": f"offset 7 is out of range: {topic}:0 holds offsets 0 to 0",
    }
    for position, words in cases.items():
        done = ilagent("trace", "--offset", position, "--kafka_brokers", kafka_bootstrap)
        lines = done.stderr.splitlines()
        assert (done.returncode, done.stdout, len(lines)) == (2, "", 1), (position, done.stderr)
        assert lines[0].startswith("ilagent trace: error: ") and words in lines[0], lines
