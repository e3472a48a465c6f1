"""``ilagent map --last``'s command line, before any broker is asked; and how the messages it
reads are chosen and printed (the reading itself: tests/integration/kafka/test_map_last.py)."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from ilagent.cli import main
from ilagent.commands.map import Sample, line_samples, map_samples
from ilagent.mapping.messages import MappingRules

MAPPING = ["--event_key", "il1api123", "--map_key_alert_key", "mCode"]


@pytest.fixture
def clean_environment() -> Iterator[None]:
    """No ILAGENT_*/ILERT_* variable of the caller leaks in; the logging set-up is undone."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ILAGENT_", "ILERT_"))}
    with mock.patch.dict(os.environ, clean, clear=True):
        yield
    root.handlers[:], root.level = handlers, level


def run(argv: list[str], capsys: pytest.CaptureFixture[str], *,
        stdin: str = "") -> tuple[int, str, str]:
    """Run ``ilagent`` in process; its exit code, stdout and stderr."""
    with mock.patch("sys.stdin", io.StringIO(stdin)):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's own usage errors
            code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.usefixtures("clean_environment")
@pytest.mark.parametrize(("argv", "message"), [
    pytest.param(["--last", "5", "--kafka_brokers", "k:1", "-e", "t", "{file}"],
                 "--last reads the topic -e from Kafka, not {file}: give one of them",
                 id="with-FILE"),
    pytest.param(["--last", "5", "--kafka_brokers", "k:1", "-e", "t", "--file", "{file}"],
                 "--last reads the topic -e from Kafka, not {file}: give one of them",
                 id="with---file"),
    pytest.param(["--last", "5", "-e", "t"],
                 "--last needs --kafka_brokers: the Kafka cluster to read", id="no-brokers"),
    pytest.param(["--last", "5", "--kafka_brokers", "k:1"],
                 "--last needs -e/--event_topic: the topic to read", id="no-topic"),
    pytest.param(["--last", "5", "--kafka_brokers", "k:1", "-e", "^plant\\..*"],
                 "--last reads one topic by its name, not ^plant\\..*", id="regex"),
    pytest.param(["--last", "5", "--kafka_brokers", "k:1", "-e", "a,b"],
                 "--last reads one topic by its name, not a,b", id="list"),
    pytest.param(["--last", "5", "--kafka_brokers", "k:1", "-e", "t", "--message_key", "k"],
                 "--message_key is the key of lines from FILE or stdin: with --last each "
                 "message has its own", id="message-key"),
    pytest.param(["--last", "100001", "--kafka_brokers", "k:1", "-e", "t"],
                 "--last 100001: at most 100000 messages", id="too-many"),
    pytest.param(["--kafka_brokers", "k:1", "-e", "t"],
                 "--kafka_brokers needs --last (without it map reads FILE or stdin)",
                 id="brokers-without-last"),
    pytest.param(["--kafka_sasl_username", "u"],
                 "--kafka_sasl_username needs --last (without it map reads FILE or stdin)",
                 id="sasl-without-last"),
    pytest.param(["--timeout", "3"],
                 "--timeout needs --last (without it map reads FILE or stdin)",
                 id="timeout-without-last"),
    pytest.param(["--last", "5", "--kafka_brokers", "k:1", "-e", "t", "--kafka_security_protocol",
                  "SASL_SSL"],
                 "--kafka_security_protocol SASL_SSL needs --kafka_sasl_mechanism (PLAIN, "
                 "SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER; librdkafka would try GSSAPI)",
                 id="sasl-without-mechanism"),
])
def test_a_last_that_cannot_work_is_a_usage_error(argv: list[str], message: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Each mistake around --last is exit 2 and one line naming it, before any broker is asked."""
    messages = tmp_path / "messages.jsonl"
    messages.write_text('{"mCode": "M1"}\n')
    argv = [a.replace("{file}", str(messages)) for a in argv]
    code, out, err = run(["map", *argv, *MAPPING], capsys)
    assert (code, out) == (2, "")
    assert err.splitlines() == [f"ilagent map: error: {message.replace('{file}', str(messages))}"]


@pytest.mark.usefixtures("clean_environment")
def test_last_zero_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    """--last 0 asks for nothing: exit 2 from the parser."""
    code, _, err = run(["map", "--last", "0", "--kafka_brokers", "k:1", "-e", "t"], capsys)
    assert code == 2 and "argument --last: '0' must be at least 1" in err


@pytest.mark.usefixtures("clean_environment")
def test_kafka_settings_from_the_environment_leave_a_line_run_alone(
        capsys: pytest.CaptureFixture[str]) -> None:
    """ILAGENT_KAFKA_* (set for the daemon) are not flags: map over stdin maps as ever."""
    with mock.patch.dict(os.environ, {"ILAGENT_KAFKA_BROKERS": "k:1",
                                      "ILAGENT_KAFKA_SASL_USERNAME": "u"}):
        code, out, err = run(["map", *MAPPING], capsys, stdin='{"mCode": "M1"}\n')
    assert code == 0, err
    assert json.loads(out)["line"] == 1


def test_a_sample_is_printed_with_where_it_came_from_first() -> None:
    """A message read from Kafka prints topic, partition and offset where a line prints its
    number; the rest of the result is the same."""
    rules = MappingRules(event_key="il1api123", map_key_alert_key="mCode")
    payload = b'{"mCode": "M1", "summary": "x"}'
    out = io.StringIO()
    map_samples(rules, [Sample(payload, "plant", b"k1", {"topic": "plant", "partition": 1,
                                                         "offset": 41})],
                api_url="http://ilert/api", check=False, out=out)
    from_kafka = json.loads(out.getvalue())
    out = io.StringIO()
    map_samples(rules, line_samples([payload.decode()], topic="plant", message_key=b"k1"),
                api_url="http://ilert/api", check=False, out=out)
    from_line = json.loads(out.getvalue())
    assert list(from_kafka)[:4] == ["topic", "partition", "offset", "result"]
    assert (from_kafka["topic"], from_kafka["partition"], from_kafka["offset"]) == ("plant", 1, 41)
    assert {k: v for k, v in from_kafka.items() if k not in ("topic", "partition", "offset")} \
        == {k: v for k, v in from_line.items() if k != "line"}
    assert from_kafka["event"]["alertKey"] == "M1"


def test_the_newest_are_kept_by_timestamp_then_partition_then_offset() -> None:
    """Of messages read from several partitions, the last N by (timestamp, partition, offset)
    are kept, oldest first; one without a timestamp (-1) counts as the oldest."""
    from ilagent.kafka.sample import Sampled, newest

    def at(partition: int, offset: int, timestamp: int) -> Sampled:
        return Sampled(topic="t", partition=partition, offset=offset, timestamp=timestamp,
                       key=None, value=b"{}")

    read = [at(0, 0, 100), at(0, 1, 300), at(1, 0, 200), at(1, 1, 300), at(1, 2, -1),
            at(0, 2, 400)]
    assert newest(read, 3) == [at(0, 1, 300), at(1, 1, 300), at(0, 2, 400)]
    assert newest(read, 10)[0] == at(1, 2, -1)
    assert newest(read, 1) == [at(0, 2, 400)]
