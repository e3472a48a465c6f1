"""What `ilagent replay` prints: per alert source in plain words or JSON, each differing message
with both outcomes, and never an integration key in clear."""

from __future__ import annotations

import io
import json

from ilagent.commands.replay_report import Replayed, write_json, write_text
from ilagent.mapping.replaying import Dead, Outcome, Sent, differences, play

KEY = "il1apireport0001"
HIDDEN = "*" * (len(KEY) - 4) + KEY[-4:]


def sent(event_type: str, alert_key: str | None, summary: str = "s") -> Outcome:
    event = {"integrationKey": KEY, "eventType": event_type, "summary": summary,
             **({"alertKey": alert_key} if alert_key else {})}
    return Outcome(sent=(Sent("default", f"/v1/events/kafka/{KEY}", event),))


ROWS = [
    ({"topic": "t", "partition": 0, "offset": 0}, sent("ALERT", "M1"), sent("ALERT", "M1")),
    ({"topic": "t", "partition": 0, "offset": 1}, Outcome(filtered="'type' is not 'ALARM'"),
     sent("ALERT", "M2")),
    ({"topic": "t", "partition": 0, "offset": 2}, sent("RESOLVE", "M1"),
     sent("RESOLVE", "M1", summary="closed")),
    ({"topic": "t", "partition": 1, "offset": 0}, sent("ALERT", None),
     Outcome(dead=(Dead("", "invalid_json", "not valid JSON"),))),
]


def replayed() -> Replayed:
    return Replayed(topics=("t",), since=1_700_000_000_000, until=None, candidate="--config n",
                    baseline="--against o", candidate_book=play(r[2] for r in ROWS),
                    baseline_book=play(r[1] for r in ROWS), differences=differences(ROWS))


def test_the_text_tells_each_source_and_each_difference() -> None:
    """Both configs per source, the counts apart, then each message that differs with what
    each config makes of it (events that read alike name the fields that differ)."""
    out = io.StringIO()
    write_text(replayed(), out)
    text = out.getvalue()
    assert KEY not in text
    assert text.splitlines()[:3] == [
        "replayed 4 messages of t from 2023-11-14T22:13:20Z to the end",
        "candidate: --config n", "baseline:  --against o"]
    assert (f"alert source {HIDDEN}\n  candidate: 3 events (2 ALERT, 1 RESOLVE); 2 alerts "
            "opened, 0 accepted, 1 resolved, 1 still open: M2 (PENDING)\n  baseline:  3 events "
            "(2 ALERT, 1 RESOLVE); 2 alerts opened, 0 accepted, 1 resolved, 1 still open: 1 "
            "without an alert key\n") in text
    assert "candidate: 0 filtered, 1 dead-lettered (invalid_json 1)\n" in text
    assert "baseline:  1 filtered, 0 dead-lettered\n" in text
    assert ("3 messages differ:\n  t:0:1\n    baseline:  filtered ('type' is not 'ALARM')\n"
            f"    candidate: ALERT M2 to {HIDDEN}\n  t:0:2\n    baseline:  RESOLVE M1 to "
            f"{HIDDEN}\n    candidate: RESOLVE M1 to {HIDDEN} (other summary)\n  t:1:0\n"
            f"    baseline:  ALERT (no alert key) to {HIDDEN}\n    candidate: dead letter: "
            "invalid_json (not valid JSON)\n") in text


def test_the_json_holds_the_same_with_keys_masked() -> None:
    """One object: both books with their alerts, the numbers that moved, the differences."""
    out = io.StringIO()
    write_json(replayed(), out)
    assert KEY not in out.getvalue()
    document = json.loads(out.getvalue())
    [source] = document["candidate"]["sources"]
    assert source["integrationKey"] == HIDDEN
    assert [(a["alertKey"], a["status"]) for a in source["alerts"]] == [
        ("M1", "RESOLVED"), ("M2", "PENDING")]
    assert [d["offset"] for d in document["differences"]] == [1, 2, 0]
    assert document["differences"][0]["baseline"] == {
        "events": [], "deadLetters": [], "filtered": "'type' is not 'ALARM'"}
    assert document["sourceChanges"] == []  # the same numbers, other alerts
