"""``ilagent trace``: the story of an alert from a real journal file, and its refusals."""

from __future__ import annotations

import json
import time
from pathlib import Path

import orjson
import pytest

from ilagent.cli import main
from ilagent.journal.db import JournalDB
from ilagent.journal.entries import Trail, to_row

KEY = "il1api0123456789abcdef"


def exit_code(argv: list[str]) -> int:
    """The command's exit code, whether it returned it or argparse exited with it."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def journal_with_story(path: Path) -> None:
    """PRESS-01 raised (after a 503), accepted and resolved; another alert beside it."""
    now = time.time()
    rows = []
    for n, (alert, kind) in enumerate([("PRESS-01", "ALERT"), ("OVEN-03", "ALERT"),
                                       ("press-01 ", "ACCEPT"), ("PRESS-01", "RESOLVE")]):
        trail = Trail()
        if n == 0:
            trail.add((now - 10 + n, 503, "retry", "", 0.04, "HTTP 503 upstream down"))
        trail.add((now - 9 + n, 202, "delivered", "", 0.012, ""))
        body = orjson.dumps({"integrationKey": KEY, "eventType": kind, "alertKey": alert,
                             "summary": f"{kind.lower()} {alert}"})
        rows.append(to_row((now - 9 + n, now - 10 + n, "kafka", ("alarms", 0, 40 + n),
                                 "default", KEY, body, trail, "delivered", "")))
    db = JournalDB(str(path))
    db.write(rows)
    db.close()


@pytest.mark.parametrize("option", ["--alert_key", "--alert-key"])
def test_the_story_of_one_alert_in_words(tmp_path: Path, option: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """ALERT, ACCEPT and RESOLVE of one alert, oldest first, with positions, answers and
    verdicts; the other alert is not shown, the key only masked (either spelling of the
    option: ilagent's underscores, or the hyphen the issue's examples use)."""
    journal_with_story(tmp_path / "ilagent.db3.journal.db")
    assert main(["trace", option, "press-01", "-f", str(tmp_path / "ilagent.db3")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("alert press-01: 3 events")
    kinds = [line.split()[2] for line in out.splitlines() if "kafka alarms" in line]
    assert kinds == ["ALERT", "ACCEPT", "RESOLVE"]
    assert "kafka alarms[0]@40" in out and "OVEN-03" not in out
    assert "503 retry  40 ms: HTTP 503 upstream down" in out
    assert out.count("→ delivered") == 3 and KEY not in out and "cdef" in out


def test_json_is_what_trace_answers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json: one document with every event of the last hour, attempts included."""
    path = tmp_path / "j.db"
    journal_with_story(path)
    assert main(["trace", "--since", "1h", "--journal", str(path), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert [e["alertKey"] for e in body["events"]] == ["PRESS-01", "OVEN-03", "press-01 ",
                                                       "PRESS-01"]
    assert body["events"][0]["attempts"][0]["status"] == 503


def test_no_journal_is_one_line_saying_where_it_would_be(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing journal: exit 1, one line naming the path, --journal and --offset; no file
    is made."""
    assert main(["trace", "--alert_key", "x", "-f", str(tmp_path / "q.db3")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no journal at" in err[0] and "q.db3.journal.db" in err[0]
    assert "--journal PATH" in err[0] and not (tmp_path / "q.db3.journal.db").exists()
    # a daemon without a spool (the guide's Kafka daemon, no -p) keeps none: what helps then
    assert "else only where --journal" in err[0] and "--offset TOPIC:PARTITION:OFFSET" in err[0]


@pytest.mark.parametrize(("argv", "says"), [
    (["trace"], "give --alert_key KEY, --since DURATION"),
    (["trace", "--since", "1y"], "not a duration"),
    (["trace", "--alert_key", "x", "--journal", "off"], "--journal off"),
    (["trace", "--offset", "alarms:0:17", "--alert_key", "x"], "without --alert_key"),
    (["trace", "--offset", "alarms:17"], "is not TOPIC:PARTITION:OFFSET"),
])
def test_usage_errors_are_one_line_and_exit_2(argv: list[str], says: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing to look for, a bad duration, a journal that is off, --offset with the journal's
    options: one line, exit 2, no traceback."""
    assert exit_code(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err
