"""The journal's SQLite file: its cap, its mode, what it keeps of an event and how it reads back."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import orjson
import pytest

from ilagent.journal.db import JournalDB, NoJournal
from ilagent.journal.entries import Ended, Trail, as_json, parse_since, to_row, where

KEY = "il1api0123456789abcdef"


def ended(n: int, *, alert: str = "door", body: bytes | None = None, verdict: str = "delivered",
          reason: str = "", trail: Trail | None = None) -> Ended:
    event = {"integrationKey": KEY, "eventType": "ALERT", "alertKey": alert,
             "summary": f"event {n} of {KEY}"}
    return (1_000_000.0 + n, 1_000_000.0 + n - 0.5, "kafka", ("alarms", 2, n), "default",
                 KEY, body if body is not None else orjson.dumps(event), trail, verdict, reason)


def test_the_cap_holds_under_100_000_events(tmp_path: Path) -> None:
    """100,000 events into a 1 MiB journal: the file stays near 1 MiB, the newest are kept and
    the oldest dropped."""
    path = str(tmp_path / "j.db")
    cap = 1024 * 1024
    db = JournalDB(path, max_bytes=cap)
    trail = Trail()
    trail.add((1.0, 202, "delivered", "", 0.012, ""))
    for start in range(0, 100_000, 1000):
        db.write([to_row(ended(n, alert=f"a{n % 300}", trail=trail))
                  for n in range(start, start + 1000)])
        assert os.path.getsize(path) <= cap * 1.3
    kept = db.count()
    assert 1000 < kept < 100_000
    newest = db.story(alert_key=f"a{99_999 % 300}", limit=5)
    assert [row[6] for row in newest][-1] == 99_999  # position: the last offset written
    assert db.story(alert_key="a0", since=1_000_000.0 + 10, limit=1) and not db.story(
        alert_key="a0", since=1_000_000.0 + 100_001, limit=1)
    db.close()
    assert os.path.getsize(path) <= cap * 1.3


def test_the_file_is_its_owners_alone_whatever_the_umask(tmp_path: Path) -> None:
    """Created 0600 under a permissive umask, and its WAL too; a wider old file is narrowed."""
    old = os.umask(0o022)
    try:
        path = tmp_path / "j.db"
        db = JournalDB(str(path))
        db.write([to_row(ended(1))])
        for name in (path, Path(f"{path}-wal")):
            assert stat.S_IMODE(name.stat().st_mode) == 0o600, name
        db.close()
        path.chmod(0o644)
        JournalDB(str(path)).close()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_the_integration_key_is_never_kept_in_clear(tmp_path: Path) -> None:
    """Neither the key column nor a summary or ilert's answer quoting it holds the key."""
    path = tmp_path / "j.db"
    db = JournalDB(str(path))
    trail = Trail()
    trail.add((1.0, 400, "rejected", "", 0.01, f"no such key {KEY}"))
    db.write([to_row(ended(1, trail=trail, verdict="dead_lettered", reason="rejected"))])
    shown = as_json(db.story(alert_key="door")[0])
    db.close()
    assert shown["integrationKey"].endswith("cdef") and KEY not in str(shown)
    for name in (path, Path(f"{path}-wal")):
        if name.exists():
            assert KEY.encode() not in name.read_bytes()


def test_a_row_reads_back_with_position_answers_and_verdict() -> None:
    """Each answer keeps its time, status, outcome and latency; the verdict and reason stay."""
    trail = Trail()
    trail.add((1_000_000.25, 503, "retry", "", 0.0405, "HTTP 503"))
    trail.add((1_000_001.5, 202, "delivered", "", 0.012, ""))
    row = to_row(ended(17, trail=trail))
    shown = as_json((1, *row))
    assert shown["position"] == {"topic": "alarms", "partition": 2, "offset": 17}
    assert shown["where"] == "kafka alarms[2]@17"
    assert (shown["alertKey"], shown["eventType"], shown["verdict"]) == ("door", "ALERT",
                                                                        "delivered")
    assert [(a["status"], a["outcome"], a["ms"]) for a in shown["attempts"]] == [
        (503, "retry", 40.5), (202, "delivered", 12.0)]
    assert shown["attempts"][0]["at"] == "1970-01-12T13:46:40.250Z"
    assert shown["attempts"][0]["detail"] == "HTTP 503" and "detail" not in shown["attempts"][1]


def test_a_long_outage_keeps_the_first_and_the_last_answers() -> None:
    """1,000 answers: the first 10 and the last 20 are kept, and the count of all."""
    trail = Trail()
    for n in range(1000):
        trail.add((float(n), 503, "retry", "", 0.01, ""))
    assert trail.count == 1000
    assert [a[0] for a in trail.answers()] == [*range(10), *range(980, 1000)]


def test_a_body_that_is_not_an_object_still_makes_a_row() -> None:
    """A body the journal cannot read keeps the row, without alert key or type."""
    shown = as_json((1, *to_row(ended(1, body=b"[1, 2]"))))
    assert (shown["alertKey"], shown["eventType"], shown["summary"]) == (None, None, None)


@pytest.mark.parametrize(("source", "spot", "words"), [
    ("kafka", ("alarms", 0, 5), "kafka alarms[0]@5"),
    ("mqtt", ("plant/a", None, 7), "mqtt plant/a#7"),
    ("http", ("", None, 12), "http queue#12"),
    ("http", ("plant/a", None, 12), "http queue#12 (MQTT plant/a)"),
])
def test_where_a_message_was_in_words(source: str, spot: tuple[str, int | None, int],
                                      words: str) -> None:
    """Kafka by topic, partition and offset; MQTT by topic and packet id; the spool by row."""
    assert where(source, *spot) == words


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), ("90s", 90), ("30m", 1800), ("1h", 3600), ("1.5h", 5400), ("2d", 172800),
    ("1w", 604800), (" 1H ", 3600)])
def test_durations(text: str, seconds: float) -> None:
    """--since and since= take seconds or a number with s, m, h, d or w."""
    assert parse_since(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1y", "-1h", "0", "1 hour"])
def test_durations_refused(text: str) -> None:
    """Anything else is refused with the forms that work."""
    with pytest.raises(ValueError, match="30m"):
        parse_since(text)


def test_reading_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    """trace's read-only open of a file that is not there says so and leaves no file behind."""
    with pytest.raises(NoJournal):
        JournalDB(str(tmp_path / "none.db"), create=False)
    assert not (tmp_path / "none.db").exists()


def test_a_read_beside_the_writer_sees_what_it_wrote(tmp_path: Path) -> None:
    """The read-only open (trace) sees the daemon's committed rows while it runs."""
    path = str(tmp_path / "j.db")
    writer = JournalDB(path)
    writer.write([to_row(ended(n)) for n in range(3)])
    reader = JournalDB(path, create=False)
    assert [row[6] for row in reader.story(alert_key=" DOOR ", since=999_000.0)] == [
        0, 1, 2]
    reader.close()
    writer.close()
