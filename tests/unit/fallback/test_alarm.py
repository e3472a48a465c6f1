"""The local alarm's decisions over handed-in times, and what its notices say."""

from __future__ import annotations

import pytest

from ilagent.fallback.alarm import (
    ALARM,
    ALL_CLEAR,
    REMINDER,
    AlarmState,
    Notice,
    duration,
)

CHANNELS = ("mqtt", "webhook", "mail")


def state() -> AlarmState:
    return AlarmState(after=300.0, repeat=1800.0, channels=CHANNELS)


def kinds(alarms: AlarmState, now: float) -> list[str]:
    return [step.kind for step in alarms.due(now)]


def test_the_alarm_comes_once_after_the_circuit_was_open_long_enough() -> None:
    """Open at 1000: nothing at 1299.9, the alarm on every channel at 1300, then nothing more
    until the first reminder is due."""
    alarms = state()
    alarms.opened(1000.0)
    assert alarms.due(1299.9) == [] and not alarms.raised
    [step] = alarms.due(1300.0)
    assert (step.kind, step.channels, step.opened_at, step.open_for) == (
        ALARM, CHANNELS, 1000.0, 300.0)
    assert alarms.raised
    assert kinds(alarms, 1300.0) == [] and kinds(alarms, 3099.0) == []
    assert alarms.next_due() == 3100.0


def test_reminders_come_every_repeat_while_the_circuit_stays_open() -> None:
    """After the alarm at 1300: reminders at 3100, 4900, 6700, each saying how long it is."""
    alarms = state()
    alarms.opened(1000.0)
    alarms.due(1300.0)
    steps = [alarms.due(t) for t in (3100.0, 4000.0, 4900.0, 6700.0)]
    assert [[s.kind for s in due] for due in steps] == [[REMINDER], [], [REMINDER], [REMINDER]]
    assert [due[0].open_for for due in steps if due] == [2100.0, 3900.0, 5700.0]


def test_a_late_tick_makes_one_reminder_not_a_burst() -> None:
    """An event loop that looked again only after three periods sends one reminder, and the
    next is a whole period after it."""
    alarms = state()
    alarms.opened(0.0)
    alarms.due(300.0)
    assert kinds(alarms, 300.0 + 3 * 1800.0 + 5) == [REMINDER]
    assert alarms.next_due() == 300.0 + 4 * 1800.0 + 5


def test_closing_after_an_alarm_gives_the_all_clear_with_the_outage_length() -> None:
    """The circuit closes at 2000 after the alarm: one all-clear on every channel, about an
    outage of 1000 s; then nothing is due and the state is quiet."""
    alarms = state()
    alarms.opened(1000.0)
    alarms.due(1300.0)
    [step] = alarms.closed(2000.0)
    assert (step.kind, step.channels, step.open_for) == (ALL_CLEAR, CHANNELS, 1000.0)
    assert not alarms.raised and alarms.next_due() is None and alarms.due(9999.0) == []


def test_a_short_outage_says_nothing() -> None:
    """Open for less than --fallback_after: no alarm, no all-clear."""
    alarms = state()
    alarms.opened(1000.0)
    assert alarms.due(1200.0) == []
    assert alarms.closed(1299.0) == []
    assert alarms.due(5000.0) == [] and alarms.next_due() is None


def test_opening_again_is_a_new_outage_with_a_new_alarm() -> None:
    """After an all-clear, the next opening waits --fallback_after again and alarms again."""
    alarms = state()
    alarms.opened(0.0)
    alarms.due(300.0)
    alarms.closed(400.0)
    alarms.opened(1000.0)
    assert alarms.due(1299.0) == []
    assert kinds(alarms, 1300.0) == [ALARM]


def test_the_circuit_opening_twice_keeps_the_first_time() -> None:
    """A second "opened" while open (a listener called twice) does not restart the wait."""
    alarms = state()
    alarms.opened(0.0)
    alarms.opened(200.0)
    assert kinds(alarms, 300.0) == [ALARM]


def test_closing_a_closed_circuit_says_nothing() -> None:
    """A "closed" without an opening is no all-clear."""
    assert state().closed(10.0) == []


def test_a_failed_alarm_is_not_retried_before_the_next_reminder() -> None:
    """The webhook failed the alarm: nothing is due for it until the reminder, which goes to
    every channel."""
    alarms = state()
    alarms.opened(0.0)
    [step] = alarms.due(300.0)
    alarms.failed(step, "webhook", 301.0)
    assert alarms.due(1000.0) == [] and alarms.next_due() == 2100.0
    [reminder] = alarms.due(2100.0)
    assert reminder.channels == CHANNELS


def test_a_failed_all_clear_is_sent_again_to_that_channel_only() -> None:
    """The mail relay failed the all-clear: a repeat later it alone is sent the all-clear
    again, about the same outage; once through, nothing more is due."""
    alarms = state()
    alarms.opened(0.0)
    alarms.due(300.0)
    [clear] = alarms.closed(500.0)
    alarms.failed(clear, "mail", 501.0)
    assert alarms.next_due() == 2301.0 and alarms.due(2300.0) == []
    [again] = alarms.due(2301.0)
    assert (again.kind, again.channels, again.open_for) == (ALL_CLEAR, ("mail",), 500.0)
    assert alarms.next_due() is None and alarms.due(9999.0) == []


def test_a_new_alarm_supersedes_an_owed_all_clear() -> None:
    """The all-clear failed on mail, ilert failed again long enough: the new alarm goes out
    and the old all-clear is never sent after it."""
    alarms = state()
    alarms.opened(0.0)
    alarms.due(300.0)
    [clear] = alarms.closed(500.0)
    alarms.failed(clear, "mail", 501.0)
    alarms.opened(600.0)
    assert alarms.due(800.0) == []  # open: an all-clear would be false now
    assert kinds(alarms, 900.0) == [ALARM]
    alarms.closed(950.0)
    assert [s.channels for s in alarms.due(5000.0)] == []


def test_an_owed_all_clear_waits_while_the_circuit_is_open_again() -> None:
    """A short new outage holds the owed all-clear back; it goes once the circuit closed."""
    alarms = state()
    alarms.opened(0.0)
    alarms.due(300.0)
    [clear] = alarms.closed(500.0)
    alarms.failed(clear, "mail", 501.0)
    alarms.opened(2000.0)
    assert alarms.due(2100.0) == [] and alarms.next_due() == 2300.0
    assert alarms.closed(2200.0) == []
    assert alarms.due(2300.0) == []
    assert [s.channels for s in alarms.due(2301.0)] == [("mail",)]


def notice(kind: str, *, backlog: int = 12, open_for: float = 300.0) -> Notice:
    return Notice(kind=kind, since=1_700_000_000.0, at=1_700_000_000.0 + open_for,
                  open_for=open_for, backlog=backlog, last_error="HTTP 503",
                  ilert_url="https://api.ilert.com/api", host="plant3-gw", version="1.0.0")


def test_the_json_body_has_the_documented_fields() -> None:
    """status, daemon, version, host, since and at (UTC, ISO 8601), openFor (whole seconds),
    backlog, lastError, ilertUrl."""
    assert notice(ALARM, open_for=300.4).body() == {
        "status": "ilert_unreachable", "daemon": "ilagent", "version": "1.0.0",
        "host": "plant3-gw", "since": "2023-11-14T22:13:20Z", "at": "2023-11-14T22:18:20Z",
        "openFor": 300, "backlog": 12, "lastError": "HTTP 503",
        "ilertUrl": "https://api.ilert.com/api"}


@pytest.mark.parametrize(("kind", "backlog", "open_for", "subject"), [
    (ALARM, 12, 300, "ilagent on plant3-gw: ilert unreachable for 5 min, 12 events waiting"),
    (REMINDER, 1, 2100, "ilagent on plant3-gw: ilert still unreachable after 35 min, 1 event "
                        "waiting"),
    (ALL_CLEAR, 40, 7500, "ilagent on plant3-gw: ilert reachable again after 2 h 5 min, 40 "
                          "events to deliver"),
])
def test_the_subject_says_what_happened(kind: str, backlog: int, open_for: float,
                                        subject: str) -> None:
    """A mail's subject names the host, the outage's length and the events waiting."""
    assert notice(kind, backlog=backlog, open_for=open_for).subject() == subject
    assert notice(kind, backlog=backlog, open_for=open_for).text().startswith(subject)


@pytest.mark.parametrize(("seconds", "text"), [
    (0.4, "0 s"), (45, "45 s"), (119.4, "119 s"), (119.6, "2 min"), (300, "5 min"),
    (7199, "119 min"),
    (7200, "2 h 0 min"), (7500, "2 h 5 min"),
])
def test_duration_reads_as_a_person_says_it(seconds: float, text: str) -> None:
    """Seconds below two minutes, minutes below two hours, then hours and minutes."""
    assert duration(seconds) == text
