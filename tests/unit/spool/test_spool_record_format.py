"""The Kafka spool's record format (ilagent.records, version 1): what the intake writes is read
back as the row it would have been in SQLite, and a record this code cannot read ends as a
dead letter with its reason."""

from __future__ import annotations

import json

import pytest

from ilagent.delivery.lanes import event_lane, heartbeat_lane
from ilagent.records import (
    KIND_HEADER,
    PATH_HEADER,
    SPOOL_FORMAT,
    SPOOL_FORMAT_REASON,
    VERSION_HEADER,
    RecordKind,
    StoredRecord,
    Unreadable,
    read_spool_record,
    spool_record,
)
from ilagent.spool.rows import Delivery, Ending, read_record

EVENT = json.dumps({"integrationKey": "il1api123", "eventType": "ALERT", "alertKey": "door-3",
                    "summary": "open"})


def test_the_format_is_the_documented_one() -> None:
    """Key: the integration key; value: the event text; headers: version, kind, path."""
    key, value, headers = spool_record(RecordKind.EVENT, integration_key="il1api123",
                                       path="/v1/events", event=EVENT)
    assert key == b"il1api123" and value == EVENT.encode()
    assert headers == [(VERSION_HEADER, b"1"), (KIND_HEADER, b"event"),
                       (PATH_HEADER, b"/v1/events")]
    assert (SPOOL_FORMAT, VERSION_HEADER, KIND_HEADER, PATH_HEADER) == (
        1, "ilagent-spool", "ilagent-kind", "ilagent-path")


@pytest.mark.parametrize("kind", list(RecordKind))
def test_every_kind_round_trips(kind: RecordKind) -> None:
    """What is written is read back field for field, whatever its kind."""
    text = "" if kind is RecordKind.HEARTBEAT else EVENT
    record = read_spool_record(*spool_record(kind, integration_key="il1api123", path="/events",
                                             event=text))
    assert record == StoredRecord(kind=kind.value, integration_key="il1api123", path="/events",
                                  event=text)


def test_an_event_record_becomes_the_delivery_its_sqlite_row_would() -> None:
    """An event is posted to its path on its alert's lane, sent as it was stored."""
    record = read_spool_record(*spool_record(RecordKind.EVENT, integration_key="il1api123",
                                             path="/v1/events", event=EVENT))
    assert isinstance(record, StoredRecord)
    assert read_record(record, convert=None) == Delivery(
        event_lane("il1api123", json.loads(EVENT)), "il1api123", "/v1/events", EVENT.encode(),
        pages=True)


def test_a_heartbeat_record_becomes_a_ping() -> None:
    """An empty value with the heartbeat kind: a ping of the key, on its heartbeat lane."""
    record = read_spool_record(*spool_record(RecordKind.HEARTBEAT, integration_key="ih1beat",
                                             path="", event=""))
    assert isinstance(record, StoredRecord)
    assert read_record(record, convert=None) == Delivery(heartbeat_lane("ih1beat"), "ih1beat")


def test_a_kind_this_code_does_not_know_is_a_dead_letter() -> None:
    """A kind of a newer ilagent ends as unknown_kind, as a SQLite row of it would."""
    record = read_spool_record(b"k", b"{}", [(VERSION_HEADER, b"1"), (KIND_HEADER, b"sms")])
    assert isinstance(record, StoredRecord)
    ending = read_record(record, convert=None)
    assert isinstance(ending, Ending) and ending.reason == "unknown_kind"


@pytest.mark.parametrize(("headers", "says"), [
    (None, "no ilagent-spool header"),
    ([(KIND_HEADER, b"event")], "no ilagent-spool header"),
    ([(VERSION_HEADER, b"2"), (KIND_HEADER, b"event")], "a newer format"),
    ([(VERSION_HEADER, b"one"), (KIND_HEADER, b"event")], "without a valid version"),
    ([(VERSION_HEADER, b"1")], "without a valid version or an ilagent-kind header"),
])
def test_a_record_without_the_version_or_of_a_newer_one_is_a_dead_letter(
        headers: list[tuple[str, bytes]] | None, says: str) -> None:
    """Never retried for ever: the reason spool_format, and a detail saying why."""
    unreadable = read_spool_record(b"il1api123", EVENT.encode(), headers)
    assert isinstance(unreadable, Unreadable)
    assert unreadable.reason == SPOOL_FORMAT_REASON and says in unreadable.detail


def test_a_key_that_is_not_utf8_is_a_dead_letter() -> None:
    """Bytes no intake wrote end as spool_format, not as a crash."""
    unreadable = read_spool_record(b"\xff", b"{}", [(VERSION_HEADER, b"1"),
                                                   (KIND_HEADER, b"event")])
    assert isinstance(unreadable, Unreadable) and "not UTF-8" in unreadable.detail
