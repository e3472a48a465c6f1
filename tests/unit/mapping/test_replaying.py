"""What ilert would have seen: the alert state played per alert key, and the differences
between two configs' outcomes of the same messages."""

from __future__ import annotations

import pytest

from ilagent.mapping.messages import Dropped, DropReason, Mapped
from ilagent.mapping.reading import Event, Fanout, Refused
from ilagent.mapping.replaying import (
    Dead,
    Outcome,
    Sent,
    Source,
    differences,
    outcome_of,
    play,
    source_changes,
)

KEY = "il1apireplay0001"


def sent(event_type: str, alert_key: str | None = "M1", key: str = KEY, **more: str) -> Sent:
    event = {"integrationKey": key, "eventType": event_type, "summary": "s", **more}
    if alert_key is not None:
        event["alertKey"] = alert_key
    return Sent("default", f"/v1/events/kafka/{key}", event)


@pytest.mark.parametrize(("events", "statuses", "numbers"), [
    ([("ALERT", "M1")], [("M1", "PENDING")], (1, 0, 0, 1, 0)),
    ([("ALERT", "M1"), ("ALERT", "M1")], [("M1", "PENDING")], (1, 0, 0, 1, 0)),
    ([("ALERT", "M1"), ("ACCEPT", "M1")], [("M1", "ACCEPTED")], (1, 1, 0, 1, 0)),
    ([("ALERT", "M1"), ("ACCEPT", "M1"), ("ACCEPT", "M1")], [("M1", "ACCEPTED")],
     (1, 1, 0, 1, 0)),
    ([("ALERT", "M1"), ("RESOLVE", "M1")], [("M1", "RESOLVED")], (1, 0, 1, 0, 0)),
    ([("ALERT", "M1"), ("RESOLVE", "M1"), ("ALERT", "M1")],
     [("M1", "RESOLVED"), ("M1", "PENDING")], (2, 0, 1, 1, 0)),
    ([("RESOLVE", "M1")], [], (0, 0, 0, 0, 1)),
    ([("ACCEPT", "M1"), ("ALERT", "M1")], [("M1", "PENDING")], (1, 0, 0, 1, 1)),
    ([("ALERT", "M1"), ("RESOLVE", "M1"), ("RESOLVE", "M1")], [("M1", "RESOLVED")],
     (1, 0, 1, 0, 1)),
    ([("ALERT", "M1"), ("COMMENT", "M1")], [("M1", "PENDING")], (1, 0, 0, 1, 0)),
    ([("COMMENT", "M1")], [], (0, 0, 0, 0, 0)),
    ([("ALERT", None), ("ALERT", None)], [(None, "PENDING"), (None, "PENDING")],
     (2, 0, 0, 2, 0)),
    ([("ALERT", "M1"), ("ALERT", "M2"), ("RESOLVE", "M2")],
     [("M1", "PENDING"), ("M2", "RESOLVED")], (2, 0, 1, 1, 0)),
])
def test_alert_state_is_played_as_ilert_keeps_it(
        events: list[tuple[str, str | None]], statuses: list[tuple[str | None, str]],
        numbers: tuple[int, int, int, int, int]) -> None:
    """ALERT opens (or is appended to the open alert of its key), ACCEPT accepts, RESOLVE
    closes; an ACCEPT or RESOLVE without an open alert is counted as unmatched."""
    source = Source()
    for event_type, alert_key in events:
        source.apply(event_type, alert_key)
    assert [(a.alert_key, a.status) for a in source.alerts] == statuses
    summary = source.summary()
    assert (summary["opened"], summary["accepted"], summary["resolved"], summary["stillOpen"],
            summary["unmatched"]) == numbers
    assert summary["events"] == len(events)


def test_a_book_counts_per_alert_source_and_apart_filtered_and_dead() -> None:
    """Each integration key is its own alert source; filtered and dead-lettered messages are
    counted once each, dead letters by reason."""
    book = play([Outcome(sent=(sent("ALERT"),)), Outcome(sent=(sent("ALERT", key="il1apiother1"),)),
                 Outcome(filtered="'type' is not 'ALARM'"),
                 Outcome(dead=(Dead("", "invalid_json", "not valid JSON"),)),
                 Outcome(sent=(sent("RESOLVE"),), dead=(Dead("b", "no_key", "none"),))])
    assert book.messages == 5 and book.filtered == 1
    assert dict(book.dead) == {"invalid_json": 1, "no_key": 1}
    assert {key: s.summary()["stillOpen"] for key, s in book.sources.items()} == {
        KEY: 0, "il1apiother1": 1}


def mapped(route: str = "default", **event: str) -> Mapped:
    body = {"integrationKey": KEY, "eventType": "ALERT", "summary": "s", **event}
    return Mapped(body, f"/v1/events/kafka/{KEY}", route=route)


@pytest.mark.parametrize(("reading", "expected"), [
    (Event(mapped(), b"{}"), Outcome(sent=(Sent("default", f"/v1/events/kafka/{KEY}",
                                                mapped().event),))),
    (Refused("invalid_json", "not valid JSON"),
     Outcome(dead=(Dead("", "invalid_json", "not valid JSON"),))),
    (Dropped(DropReason.FILTERED, "'type' is not 'ALARM'"),
     Outcome(filtered="'type' is not 'ALARM'")),
    (Fanout((), ("a",), "a: not type = 'ALARM'"), Outcome(filtered="a: not type = 'ALARM'")),
    (Fanout((Event(mapped("a"), b"{}"), Refused("no_key", "none", "b"))),
     Outcome(sent=(Sent("a", f"/v1/events/kafka/{KEY}", mapped().event),),
             dead=(Dead("b", "no_key", "none"),))),
])
def test_each_reading_comes_to_its_outcome(reading: object, expected: Outcome) -> None:
    """Events become sent events, refusals dead letters, a drop or an empty fan-out filtered."""
    assert outcome_of(reading) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("before", "after", "differ"), [
    (Outcome(sent=(sent("ALERT"),)), Outcome(sent=(sent("ALERT"),)), False),
    (Outcome(filtered="x"), Outcome(filtered="another reason"), False),
    (Outcome(filtered="x"), Outcome(sent=(sent("ALERT"),)), True),
    (Outcome(sent=(sent("ALERT"),)), Outcome(sent=(sent("ALERT", summary="other"),)), True),
    (Outcome(sent=(sent("ALERT"),)), Outcome(sent=(sent("ALERT"), sent("ALERT"))), True),
    (Outcome(dead=(Dead("", "no_key", "a"),)), Outcome(dead=(Dead("", "no_key", "b"),)), False),
    (Outcome(dead=(Dead("", "no_key", "a"),)), Outcome(filtered="x"), True),
])
def test_two_outcomes_differ_when_ilert_would_see_something_else(
        before: Outcome, after: Outcome, differ: bool) -> None:
    """Same events and dead letters (by reason) are no difference; why a message is filtered
    is not either."""
    rows = [({"offset": 7}, before, after)]
    assert [d.where["offset"] for d in differences(rows)] == ([7] if differ else [])


def test_source_changes_name_each_number_that_moved() -> None:
    """A source only one config feeds shows against zeros; equal sources are left out."""
    baseline = play([Outcome(sent=(sent("ALERT"),))])
    candidate = play([Outcome(sent=(sent("ALERT"),)), Outcome(sent=(sent("RESOLVE"),)),
                      Outcome(sent=(sent("ALERT", key="il1apiother1"),))])
    changes = source_changes(baseline, candidate)
    assert changes[KEY] == {"events": (1, 2), "byType": ({"ALERT": 1}, {"ALERT": 1, "RESOLVE": 1}),
                            "resolved": (0, 1), "stillOpen": (1, 0)}
    assert changes["il1apiother1"]["opened"] == (0, 1)
    assert source_changes(baseline, baseline) == {}
