"""Tests of ``ilagent.commands.map.run_map``, the engine of the ``ilagent map`` dry run."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any

import pytest

from guide import guide_rules
from ilagent.commands.map import EXIT_DROPPED, EXIT_OK, run_map
from ilagent.mapping.messages import MappingRules

API_URL = "https://api.ilert.com/api"
KEY = "il1api123"
TOPIC = "plant/alarms"
GUIDE_RULES = guide_rules(KEY)
COMPLETE = '{"type": "ALARM", "state": "SET", "mCode": "M1", "comment": "door"}'


def dry_run(
    lines: Iterable[str],
    rules: MappingRules = GUIDE_RULES,
    *,
    check: bool = False,
    api_url: str = API_URL,
    message_key: str | None = None,
) -> tuple[int, list[dict[str, Any]], str]:
    """Run the map command; return its exit code, the parsed output lines and the raw output."""
    out = io.StringIO()
    code = run_map(
        rules,
        lines,
        topic=TOPIC,
        api_url=api_url,
        check=check,
        out=out,
        message_key=message_key,
    )
    text = out.getvalue()
    return code, [json.loads(line) for line in text.splitlines()], text


def test_event_line_prints_the_url_and_body_that_would_be_posted() -> None:
    """A message that maps prints its full ilert URL and the event body, key included."""
    line = '{"type": "ALARM", "mCode": "M1", "comment": "door open", "state": "SET"}'
    code, results, _ = dry_run([line])
    assert code == EXIT_OK
    assert results == [
        {
            "line": 1,
            "result": "event",
            "url": f"{API_URL}/v1/events/kafka/{KEY}",
            "event": {
                "integrationKey": KEY,
                "eventType": "ALERT",
                "summary": "door open",
                "alertKey": "M1",
                "customDetails": {"messageKey": "", "topic": TOPIC},
            },
        }
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        pytest.param('{"type": "INFO", "state": "SET"}', "filtered", id="filtered"),
        # the filter first: what cannot hold type=ALARM is filtered, whatever else it is
        pytest.param("not json", "filtered", id="not-json-cannot-match"),
        pytest.param('{"type": "ALARM", oops', "invalid_json", id="invalid-json"),
        pytest.param('["type", "ALARM"]', "invalid_message", id="not-an-object"),
        pytest.param('{"type": "ALARM", "state": "???"}', "invalid_event_type", id="bad-type"),
    ],
)
def test_dropped_line_prints_the_reason_and_a_detail(line: str, reason: str) -> None:
    """A message that yields no event prints the drop reason's value and a readable detail."""
    _, results, _ = dry_run([line])
    assert len(results) == 1
    assert results[0]["line"] == 1
    assert results[0]["result"] == "dropped"
    assert results[0]["reason"] == reason
    assert isinstance(results[0]["detail"], str)
    assert results[0]["detail"]
    assert set(results[0]) == {"line", "result", "reason", "detail"}


def test_no_key_drop_is_reported() -> None:
    """Without --event_key or a key in the payload the line is reported as dropped with no_key."""
    _, results, _ = dry_run(["{}"], MappingRules())
    assert results[0]["reason"] == "no_key"


def test_blank_lines_are_skipped_but_keep_their_numbers() -> None:
    """Blank and whitespace-only lines print nothing, and later results keep file line numbers."""
    lines = ["\n", '{"type": "ALARM", "state": "ACK"}\n', "   \n", "\t\n", '{"type": "INFO"}\n']
    _, results, _ = dry_run(lines)
    assert [(r["line"], r["result"]) for r in results] == [(2, "event"), (5, "dropped")]


def test_reads_lines_from_a_text_stream() -> None:
    """A file-like text stream (with newlines and a CRLF line) can be passed as the lines."""
    stream = io.StringIO('{"type": "ALARM", "state": "SET"}\r\n{"type": "ALARM", "state": "CLR"}\n')
    _, results, _ = dry_run(stream)
    assert [r["event"]["eventType"] for r in results] == ["ALERT", "RESOLVE"]


def test_warnings_are_printed_only_when_there_are_some() -> None:
    """Mapping warnings appear as a "warnings" list on events and drops; clean results have none."""
    lines = [
        '{"type": "ALARM", "state": "SET", "mCode": 17, "comment": "c"}',
        '{"type": "ALARM", "state": "SET", "mCode": "M1", "comment": "c"}',
        '{"type": "ALARM", "state": 5, "eventType": "UPDATE"}',
    ]
    _, results, _ = dry_run(lines)
    assert len(results[0]["warnings"]) == 1
    assert "--map_key_alert_key" in results[0]["warnings"][0]
    assert "warnings" not in results[1]
    assert results[2]["result"] == "dropped"
    assert "--map_key_etype" in results[2]["warnings"][0]


@pytest.mark.parametrize(
    ("lines", "check", "expected"),
    [
        pytest.param(['{"type": "ALARM", "state": "SET"}'], False, EXIT_OK, id="events-no-check"),
        pytest.param([COMPLETE], True, EXIT_OK, id="events-check"),
        pytest.param(['{"type": "INFO"}'], False, EXIT_OK, id="drop-without-check"),
        pytest.param(['{"type": "INFO"}'], True, EXIT_DROPPED, id="filtered-fails-check"),
        pytest.param(["not json"], True, EXIT_DROPPED, id="invalid-fails-check"),
        pytest.param(
            ['{"type": "INFO"}', '{"type": "ALARM", "state": "SET"}'],
            True,
            EXIT_DROPPED,
            id="one-drop-among-events-fails-check",
        ),
        pytest.param([], True, EXIT_OK, id="no-input"),
        pytest.param(["", "  "], True, EXIT_OK, id="only-blank-lines"),
    ],
)
def test_exit_code(lines: list[str], check: bool, expected: int) -> None:
    """The result is 0, or 1 when --check is given and any message was dropped, filtered or
    missed a mapped field."""
    assert EXIT_OK == 0
    assert EXIT_DROPPED == 1
    code, _, _ = dry_run(lines, check=check)
    assert code == expected


def test_every_line_is_processed_after_a_drop() -> None:
    """A dropped message does not stop the run: each non-blank line gets its own result."""
    lines = ["not json", '{"type": "INFO"}', '{"type": "ALARM", "state": "CLR"}']
    code, results, text = dry_run(lines, check=True)
    assert code == EXIT_DROPPED
    assert [r["line"] for r in results] == [1, 2, 3]
    assert text.count("\n") == 3


@pytest.mark.parametrize(
    ("message_key", "expected"),
    [
        pytest.param(None, "", id="no-key"),
        pytest.param("order-7", "order-7", id="key"),
        pytest.param("Tür", "Tür", id="non-ascii-key"),
        pytest.param("\udcff", "", id="undecodable-key"),
    ],
)
def test_message_key_reaches_custom_details(message_key: str | None, expected: str) -> None:
    """The given message key plays the Kafka key of every line, as in customDetails.messageKey."""
    _, results, _ = dry_run(['{"type": "ALARM", "state": "SET"}'], message_key=message_key)
    assert results[0]["event"]["customDetails"] == {"messageKey": expected, "topic": TOPIC}


def test_undecodable_line_is_invalid_json() -> None:
    """A line holding undecodable bytes (read with surrogateescape) is reported, not a crash."""
    line = b'{"type": "ALARM", "comment": "\xff"}'.decode("utf-8", "surrogateescape")
    _, results, _ = dry_run([line])
    assert results[0]["reason"] == "invalid_json"


def test_topic_names_the_default_summary() -> None:
    """The --topic value is used for the default summary as the daemon would use the real topic."""
    _, results, _ = dry_run(['{"type": "ALARM", "state": "SET"}'])
    assert results[0]["event"]["summary"] == f"New alert from {TOPIC}"


def test_output_keeps_non_ascii_text_readable() -> None:
    """Non-ASCII text is printed as is, not as \\u escapes."""
    _, _, text = dry_run(['{"type": "ALARM", "state": "SET", "comment": "Tür offen"}'])
    assert "Tür offen" in text
    assert "\\u" not in text


def test_trailing_slash_of_the_api_url_is_not_doubled() -> None:
    """An API URL given with a trailing slash still yields a single slash before the path."""
    _, results, _ = dry_run(['{"type": "ALARM", "state": "SET"}'], api_url=API_URL + "/")
    assert results[0]["url"] == f"{API_URL}/v1/events/kafka/{KEY}"


def test_forwarded_payload_is_shown_in_the_event() -> None:
    """With --forward_message_payload the printed event carries the original payload."""
    rules = MappingRules(event_key=KEY, forward_message_payload=True)
    _, results, _ = dry_run(['{"apiKey": "theirs", "temp": 91}'], rules)
    assert results[0]["event"]["customDetails"] == {"apiKey": "theirs", "temp": 91}


def test_a_mapped_path_missing_from_the_message_is_named_and_fails_check() -> None:
    """--map_key_etype State on messages that have state: every message says so, --check fails
    (a typo would otherwise turn every CLR into a new ALERT, silently)."""
    rules = MappingRules(event_key=KEY, map_key_etype="State", map_val_etype_resolve="CLR")
    code, results, _ = dry_run(['{"state": "CLR", "summary": "x"}'], rules, check=True)
    assert results[0]["result"] == "event" and results[0]["event"]["eventType"] == "ALERT"
    assert results[0]["warnings"] == ["--map_key_etype 'State' is not in the message"]
    assert code == EXIT_DROPPED


def test_policy_check_fails_on_a_policy_warning() -> None:
    """map --policy --check: a routing-key name not in the message (wrong case) is printed as a
    warning and exits 1; a fitting message passes."""
    from ilagent.commands.map import run_policy
    from ilagent.config import PolicyRules

    line = '{"data": {"email": "a@b", "shift": 1}, "location": "north", "slot": "50"}'
    for names, code in ((("Location", "slot"), EXIT_DROPPED), (("location", "slot"), EXIT_OK)):
        out = io.StringIO()
        assert run_policy(PolicyRules(routing_keys=names), MappingRules(), [line],
                          api_url=API_URL, check=True, out=out) == code
        report = json.loads(out.getvalue())
        assert report.get("warnings", []) == (
            ["--policy_routing_keys 'Location' is not in the message"] if code else [])
