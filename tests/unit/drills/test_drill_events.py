"""What a drill sends: a RESOLVE for ilagent-drill-<source> on each integration key the user's
mapping produced — or, when the mapping made none, why; and how drill messages are marked."""

from __future__ import annotations

import json

import pytest

from ilagent.config import MappingRules, PolicyRules
from ilagent.drills.events import drill_events, intake_event, queued_reading, sample_key
from ilagent.drills.marks import header_mark
from ilagent.mapping.reading import Event, read
from ilagent.mapping.route_tables import load_routes
from ilagent.mapping.topics import Kind

RULES = MappingRules(event_key="il1apiDRILLKEY0001", map_key_alert_key="mCode",
                     map_key_etype="state", map_val_etype_alert="SET",
                     filter_key="type", filter_val="ALARM")
SAMPLE = b'{"type": "ALARM", "mCode": "M1", "state": "SET", "comment": "door open"}'


def reading_of(payload: bytes, *, rules: MappingRules = RULES, routes: tuple = ()):  # type: ignore[no-untyped-def,type-arg]
    return read(Kind.EVENT, payload, topic="alarms", rules=rules, policy_rules=PolicyRules(),
                source="kafka", routes=routes)


def test_the_mapped_event_becomes_a_resolve_of_the_drill_alert_key_on_its_key_and_path() -> None:
    """The sample maps to an ALERT; what goes to ilert is a RESOLVE for ilagent-drill-kafka,
    on the mapped integration key and path, carrying the drill id."""
    events, what = drill_events(reading_of(SAMPLE), source="kafka", drill_id="abc123")
    assert what == "1 event (route default)"
    [event] = events
    body = json.loads(event.body)
    assert body["eventType"] == "RESOLVE" and body["alertKey"] == "ilagent-drill-kafka"
    assert body["integrationKey"] == "il1apiDRILLKEY0001"
    assert body["customDetails"] == {"ilagentDrill": "abc123", "source": "kafka",
                                     "route": "default"}
    assert event.path == "/v1/events/kafka/il1apiDRILLKEY0001"
    assert event.alert_key == "ilagent-drill-kafka"


def test_a_message_two_routes_take_yields_a_drill_event_for_each() -> None:
    """Each route's integration key gets its own RESOLVE; all must arrive."""
    routes = load_routes([
        {"name": "a", "integration_key": "il1apiROUTEAAAA0001", "match": [
            {"path": "type", "equals": "ALARM"}]},
        {"name": "b", "integration_key": "il1apiROUTEBBBB0002"}], where="test")
    events, what = drill_events(reading_of(SAMPLE, rules=MappingRules(), routes=routes),
                                source="mqtt", drill_id="x")
    assert sorted(e.integration_key for e in events) == ["il1apiROUTEAAAA0001",
                                                         "il1apiROUTEBBBB0002"]
    assert {json.loads(e.body)["alertKey"] for e in events} == {"ilagent-drill-mqtt"}
    assert what == "2 events (route a, b)"


@pytest.mark.parametrize(("payload", "says"), [
    (b'{"type": "INFO", "mCode": "M1"}', "filtered: "),
    (b"not json", "filtered: "),  # cannot hold type=ALARM: filtered, not a dead letter
    (b'{"type": "ALARM", oops', "dead-lettered: invalid_json"),
])
def test_a_message_the_mapping_filters_or_refuses_makes_no_drill_event(
        payload: bytes, says: str) -> None:
    """No event, and the reason the drill fails at mapped."""
    events, what = drill_events(reading_of(payload), source="kafka", drill_id="x")
    assert events == () and what.startswith(says)


def test_a_route_that_dead_letters_the_drill_fails_it_and_sends_nothing() -> None:
    """One route refuses (no integration key anywhere): none of the drill events go."""
    routes = load_routes([{"name": "keyless"},
                          {"name": "ok", "integration_key": "il1apiROUTEOKOK0003"}],
                         where="test")
    events, what = drill_events(reading_of(SAMPLE, rules=MappingRules(), routes=routes),
                                source="kafka", drill_id="x")
    assert events == () and what.startswith("route keyless dead-letters it")


def test_the_intake_drill_resolves_on_the_samples_own_key_and_reads_back_from_its_row() -> None:
    """An ilert event as sample: the intake drill posts a RESOLVE on its key; the row it is
    stored as reads back as that event with the drill id."""
    sample = b'{"integrationKey": "il1apiINTAKEKEY0004", "eventType": "ALERT", "summary": "s"}'
    assert sample_key(sample) == "il1apiINTAKEKEY0004"
    assert sample_key(SAMPLE) is None and sample_key(b"[1]") is None
    event = intake_event(sample, source="http", drill_id="d9")
    assert event is not None and event["alertKey"] == "ilagent-drill-http"
    drill_id, reading = queued_reading("/events", json.dumps(event))
    assert drill_id == "d9" and isinstance(reading, Event)
    [made], _ = drill_events(reading, source="http", drill_id=drill_id)
    assert made.path == "/events" and json.loads(made.body)["eventType"] == "RESOLVE"
    assert queued_reading("/events", '{"integrationKey": "k"}')[0] == ""


@pytest.mark.parametrize(("headers", "mark"), [
    (None, None),
    ([], None),
    ([("trace", b"1")], None),
    ([("trace", b"1"), ("ilagent.drill", b"d1")], "d1"),
    ({"ilagent.drill": "d2"}, "d2"),
    ([("ilagent.drill", None)], ""),
])
def test_the_drill_mark_of_headers_and_user_properties(headers: object, mark: str | None) -> None:
    """Kafka headers (bytes), MQTT user properties (str), either shape; "" for an empty mark
    (a marked message no drill waits for)."""
    assert header_mark(headers) == mark  # type: ignore[arg-type]
