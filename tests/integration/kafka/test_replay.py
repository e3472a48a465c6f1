"""`ilagent replay` on the session's real broker: over the demo's story of machine alarms plus
noise it prints the alerts the daemon produced, shows what a changed filter changes (and
`--check` fails on it), sends to a sandbox only when asked, and leaves no trace in the
cluster's consumer groups or in the daemon's committed offsets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from helpers import Sandbox, committed, create_topic, produce, unique, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tools"))
from demo import GUIDE_FLAGS, STORY

# the first holds the filter's strings, so it is no JSON the filter lets through: a dead letter
NOISE: list[Any] = ['{"type": "ALARM", not json', {"type": "ALARM", "mCode": "PRESS-09", "state": "WHAT"},
                    {"type": "INFO", "mCode": "OVEN-03", "comment": "Door opened", "state": "SET"}]
MESSAGES = [message for _pause, message in STORY] + NOISE
# the guide's flags as a config file, with and without the filter
FILTERED = "\n".join(f"{flag[2:]} = {json.dumps(value)}" for flag, value in
                     zip(GUIDE_FLAGS[::2], GUIDE_FLAGS[1::2], strict=True)) + "\n"
UNFILTERED = "".join(line + "\n" for line in FILTERED.splitlines()
                     if not line.startswith("filter_"))


def ilagent(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ILAGENT_", "ILERT_"))}
    return subprocess.run([sys.executable, "-m", "ilagent", *args], capture_output=True,
                          text=True, timeout=90, check=False, env=env)


def tool_groups(bootstrap: str) -> list[str]:
    """The consumer groups the broker knows that one of ilagent's readers could have made."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    listed = admin.list_consumer_groups(request_timeout=30).result(timeout=30)
    assert not listed.errors, listed.errors
    return [g.group_id for g in listed.valid
            if g.group_id.startswith(("ilagent-replay-", "ilagent-trace-", "ilagent-map-"))]


def story_topic(bootstrap: str) -> str:
    topic = create_topic(bootstrap, unique("replay"), partitions=2)
    produce(bootstrap, topic, MESSAGES,
            keys=[m["mCode"] if isinstance(m, dict) else None for m in MESSAGES], partition=0)
    return topic


def test_replay_prints_the_alerts_the_daemon_produced(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """The daemon delivers the story to the sandbox; replay of the same topic with the same
    flags lists the same alerts with the same statuses, sends nothing, joins and commits no
    group and leaves the daemon's committed offsets as they were; with --to the sandbox sees
    the same alerts again."""
    key = unique("il1apireplay")
    topic = story_topic(kafka_bootstrap)
    group = unique("g")
    daemon = run_ilagent("daemon", "--kafka_brokers", kafka_bootstrap, "--kafka_group_id", group,
                         "--kafka_offset_reset", "earliest", "-e", topic, "--event_key", key,
                         *GUIDE_FLAGS)
    wait_until(lambda: committed(kafka_bootstrap, group, topic, 2) == [len(MESSAGES), -1001],
               timeout=60, what="every message handled")
    assert daemon.stop() == 0
    produced = sorted((a["alertKey"], a["status"]) for a in sandbox.alerts())
    assert produced == [("CONV-07", "RESOLVED"), ("OVEN-03", "ACCEPTED"),
                        ("PRESS-01", "PENDING")]
    requests = len(sandbox.requests())

    done = ilagent("-vv", "replay", "--kafka_brokers", kafka_bootstrap, "-e", topic, "--since",
                   "1h", "--event_key", key, *GUIDE_FLAGS, "--json", "--check")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    [source] = report["candidate"]["sources"]
    assert sorted((a["alertKey"], a["status"]) for a in source["alerts"]) == produced
    assert (source["opened"], source["accepted"], source["resolved"], source["stillOpen"]) == (
        3, 1, 1, 2)
    assert report["messages"] == len(MESSAGES) and report["differences"] == []
    assert report["candidate"]["deadLetters"] == {"invalid_event_type": 1, "invalid_json": 1}
    assert key not in done.stdout + done.stderr and source["integrationKey"].endswith(key[-4:])
    assert len(sandbox.requests()) == requests, "a replay without --to sends nothing"
    [used] = re.findall(r"as group (ilagent-replay-[0-9a-f]+) ", done.stderr)
    assert tool_groups(kafka_bootstrap) == []
    assert committed(kafka_bootstrap, used, topic, 2) == [-1001, -1001]
    assert committed(kafka_bootstrap, group, topic, 2) == [len(MESSAGES), -1001]

    sandbox.reset()
    sent = ilagent("replay", "--kafka_brokers", kafka_bootstrap, "-e", topic, "--since", "1h",
                   "--event_key", key, *GUIDE_FLAGS, "--to", sandbox.api_url)
    assert sent.returncode == 0, sent.stderr
    assert "sent to" in sent.stdout and "5 of 5 events delivered" in sent.stdout, sent.stdout
    assert sorted((a["alertKey"], a["status"]) for a in sandbox.alerts()) == produced


def test_a_changed_filter_shows_its_difference_and_fails_the_check(
        kafka_bootstrap: str, tmp_path: Path) -> None:
    """Dropping the filter turns the INFO and HEARTBEAT messages into events and dead letters:
    each is listed with what the running config did instead, and --check exits 1; the same
    config against itself exits 0."""
    topic = story_topic(kafka_bootstrap)
    old, new = tmp_path / "old.toml", tmp_path / "new.toml"
    old.write_text(FILTERED)
    new.write_text(UNFILTERED)
    common = ["replay", "--kafka_brokers", kafka_bootstrap, "-e", topic, "--since", "1h",
              "--event_key", unique("il1apireplay")]
    done = ilagent(*common, "--config", str(new), "--against", str(old), "--check")
    assert done.returncode == 1, done.stderr
    assert "4 messages differ:" in done.stdout, done.stdout
    assert f"  {topic}:0:1\n    baseline:  filtered ('type' is not 'ALARM')\n" \
           "    candidate: ALERT PRESS-01 to " in done.stdout
    assert "candidate: dead letter: invalid_event_type" in done.stdout  # the HEARTBEAT
    as_json = json.loads(ilagent(*common, "--config", str(new), "--against", str(old),
                                 "--json").stdout)
    assert [d["offset"] for d in as_json["differences"]] == [1, 4, 7, 10]
    same = ilagent(*common, "--config", str(old), "--against", str(old), "--check")
    assert same.returncode == 0, same.stderr
    assert "no difference" in same.stdout


def test_sending_to_ilert_itself_needs_send_and_bad_ranges_are_one_line(
        kafka_bootstrap: str) -> None:
    """--to ilert's own API without --send, an --until before --since, a topic the cluster does
    not have: one line each, exit 2, nothing read or sent."""
    common = ["replay", "--kafka_brokers", kafka_bootstrap, "--since", "1h",
              "--event_key", "il1apireplay0001"]
    cases = {
        ("-e", "t", "--to", "https://api.ilert.com/api"): "is ilert itself",
        ("-e", "t", "--until", "2h"): "is not after --since",
        ("-e", "t", "--since", "yesterday"): "is neither a duration",
        ("-e", (missing := unique("replay-missing"))): f"the Kafka topic {missing} does not exist",
    }
    for extra, words in cases.items():
        done = ilagent(*common, *extra)
        lines = done.stderr.splitlines()
        assert (done.returncode, done.stdout, len(lines)) == (2, "", 1), done.stderr
        assert lines[0].startswith("ilagent replay: error: ") and words in lines[0], lines
