"""Routes: loading [[route]] tables, who takes a message, the event each route makes of it."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ilagent.errors import ConfigError
from ilagent.mapping.messages import Dropped, DropReason, Mapped
from ilagent.mapping.reading import Event, Fanout, Refused, read_routed
from ilagent.mapping.route_tables import load_routes
from ilagent.mapping.routes import LIMITS, Route, route_message

CONFIG = """
[[route]]
name = "line3"
kafka_topics = ["plant.line3", "^plant\\\\.line3\\\\..*"]
mqtt_topics = ["factory/line3/#"]
integration_key = "il1apiline3key000000001"
match = [{ path = "type", equals = "ALARM" }, { path = "state", in = ["SET", "CLR"] }]
event_type = { path = "state", alert = "SET", resolve = "CLR" }
priority = { path = "severity", high = ["critical", "major"], default = "LOW" }
summary = "Line 3 / press {{ payload.mCode }}: {{ payload.text | default('alarm') }}"
alert_key = "line3-{{ payload.mCode }}"
labels = { line = "3", machine = "{{ payload.mCode }}" }
links = [{ href = "https://wiki.example/{{ payload.mCode }}", text = "runbook" }]
custom_details = { pick = ["mCode", "state"] }

[[route]]
name = "audit"
kafka_topics = ["plant.line3"]
integration_key_field = "meta.key"
match = { path = "audit", exists = true }
summary = "audit: {{ payload.text }}"
custom_details = "payload"
"""


def routes(text: str = CONFIG) -> tuple[Route, ...]:
    return load_routes(tomllib.loads(text)["route"], where="ilagent.toml")


def taken(message: dict[str, Any], topic: str = "plant.line3", source: str = "kafka",
          table: tuple[Route, ...] | None = None) -> dict[str, Mapped | Dropped]:
    routing = route_message(routes() if table is None else table, message, topic=topic,
                            source=source, message_key=b"k1")
    return dict(routing.taken)


ALARM = {"type": "ALARM", "state": "SET", "mCode": "M1", "text": "door open",
         "severity": "critical"}


def test_a_route_renders_every_field_it_maps() -> None:
    event = taken(ALARM)["line3"]
    assert isinstance(event, Mapped)
    assert event.event == {
        "integrationKey": "il1apiline3key000000001", "eventType": "ALERT",
        "summary": "Line 3 / press M1: door open", "alertKey": "line3-M1", "priority": "HIGH",
        "labels": {"line": "3", "machine": "M1"},
        "links": [{"href": "https://wiki.example/M1", "text": "runbook"}],
        "customDetails": {"mCode": "M1", "state": "SET"}}
    assert event.path == "/v1/events/kafka/il1apiline3key000000001"
    assert event.route == "line3" and event.missing_fields == ()


def test_value_maps_and_their_defaults() -> None:
    event = taken({**ALARM, "state": "CLR", "severity": "minor"})["line3"]
    assert isinstance(event, Mapped)
    assert (event.event["eventType"], event.event["priority"]) == ("RESOLVE", "LOW")


@pytest.mark.parametrize(("message", "why"), [
    ({**ALARM, "type": "INFO"}, "line3: not type = 'ALARM'"),
    ({**ALARM, "state": "ACK"}, "line3: not state in ['SET', 'CLR']"),
    ({**ALARM, "type": None}, "line3: not type = 'ALARM'"),
    ({k: v for k, v in ALARM.items() if k != "type"}, "line3: not type = 'ALARM'"),
])
def test_a_route_whose_match_fails_passes_the_message_over(message: dict[str, Any],
                                                           why: str) -> None:
    routing = route_message(routes(), message, topic="plant.line3", source="kafka")
    assert routing.taken == ()
    assert ("line3", why) in routing.passed


def test_equality_is_typed_as_json() -> None:
    table = routes('[[route]]\nname = "r"\nintegration_key = "k1234567"\n'
                   'match = [{ path = "a.b", equals = 3 }, { path = "on", equals = true }]')
    assert taken({"a": {"b": 3}, "on": True}, table=table)
    assert taken({"a": {"b": 3.0}, "on": True}, table=table)
    assert not taken({"a": {"b": "3"}, "on": True}, table=table)
    assert not taken({"a": {"b": 3}, "on": 1}, table=table)


def test_exists_and_absent() -> None:
    table = routes('[[route]]\nname = "r"\nintegration_key = "k1234567"\n'
                   'match = [{ path = "x.y", exists = true }, { path = "ack", exists = false }]')
    assert taken({"x": {"y": None}}, table=table)
    assert not taken({"x": {"y": 1}, "ack": 1}, table=table)
    assert not taken({"x": 1}, table=table)


def test_one_message_two_routes_two_events() -> None:
    both = taken({**ALARM, "audit": 1, "meta": {"key": "il1apiaudit0000001"}})
    assert set(both) == {"line3", "audit"}
    audit = both["audit"]
    assert isinstance(audit, Mapped)
    assert audit.integration_key == "il1apiaudit0000001"
    assert audit.event["customDetails"]["audit"] == 1  # the whole payload


def test_sources_are_per_source_kind() -> None:
    assert set(taken(ALARM, topic="factory/line3/press", source="mqtt")) == {"line3"}
    assert taken(ALARM, topic="plant.line3", source="mqtt") == {}
    assert set(taken(ALARM, topic="plant.line3.west")) == {"line3"}  # the regex
    assert taken(ALARM, topic="plant.line4") == {}


def test_missing_fields_are_named_and_the_alert_key_is_left_out_when_empty() -> None:
    table = routes('[[route]]\nname = "r"\nintegration_key = "k1234567"\n'
                   'alert_key = "{{ payload.id }}"\nsummary = "{{ payload.text }}!"')
    event = taken({"other": 1}, table=table)["r"]
    assert isinstance(event, Mapped)
    assert "alertKey" not in event.event
    assert event.event["summary"] == "!"
    assert event.missing_fields == ("summary", "alertKey")


def test_a_template_error_sends_a_fallback_and_says_so() -> None:
    table = routes('[[route]]\nname = "r"\nintegration_key = "k1234567"\n'
                   'summary = "{{ payload.n + \'x\' }}"\ndetails = "{{ payload.n + \'x\' }}"')
    event = taken({"n": 1, "details": "raw details"}, table=table)["r"]
    assert isinstance(event, Mapped)
    assert event.event["summary"] == "r"  # the route's name: the message has no summary
    assert event.event["details"] == "raw details"  # the message's own value
    assert event.template_errors == ("summary", "details")
    assert any("summary template failed" in w for w in event.warnings)


def test_texts_are_cut_to_their_limits() -> None:
    table = routes('[[route]]\nname = "r"\nintegration_key = "k1234567"\n'
                   'summary = "{{ payload.s }}"\nalert_key = "{{ payload.s }}"')
    long_a, long_b = "a" * 1000, "a" * 999 + "b"
    event_a = taken({"s": long_a}, table=table)["r"]
    event_b = taken({"s": long_b}, table=table)["r"]
    assert isinstance(event_a, Mapped) and isinstance(event_b, Mapped)
    summary = event_a.event["summary"]
    assert len(summary) == LIMITS["summary"] and summary.endswith("…")
    key_a, key_b = event_a.event["alertKey"], event_b.event["alertKey"]
    assert len(key_a) == len(key_b) == LIMITS["alertKey"]
    assert key_a != key_b  # two long keys never merge into one alert


def test_without_mapping_a_route_keeps_the_messages_own_fields_and_the_defaults() -> None:
    table = routes('[[route]]\nname = "r"\nkafka_topics = ["t"]')
    event = taken({"integrationKey": "il1apiown000000001", "eventType": "RESOLVE",
                   "alertKey": "a1"}, topic="t", table=table)["r"]
    assert isinstance(event, Mapped)
    assert event.event == {"integrationKey": "il1apiown000000001", "eventType": "RESOLVE",
                           "alertKey": "a1", "summary": "",
                           "customDetails": {"messageKey": "k1", "topic": "t"}}
    alert = taken({"integrationKey": "il1apiown000000001"}, topic="t", table=table)["r"]
    assert isinstance(alert, Mapped) and alert.event["summary"] == "New alert from t"


@pytest.mark.parametrize(("message", "reason"), [
    ({"x": 1}, DropReason.NO_KEY),
    ({"integrationKey": "il1apiown000000001", "eventType": "OPEN"},
     DropReason.INVALID_EVENT_TYPE),
])
def test_an_event_ilert_would_refuse_is_a_dead_letter(message: dict[str, Any],
                                                      reason: DropReason) -> None:
    table = routes('[[route]]\nname = "r"')
    outcome = taken(message, table=table)["r"]
    assert isinstance(outcome, Dropped) and outcome.reason is reason


def test_the_route_key_wins_and_default_key_comes_last() -> None:
    table = routes('[[route]]\nname = "r"')
    routing = route_message(table, {"x": 1}, topic="t", source="kafka",
                            default_key="il1apiflag00000001")
    (_name, event), = routing.taken
    assert isinstance(event, Mapped) and event.integration_key == "il1apiflag00000001"


def test_read_routed_fans_out_and_refuses_per_route() -> None:
    table = routes(CONFIG + '\n[[route]]\nname = "nokey"\nkafka_topics = ["plant.line3"]\n')
    reading = read_routed(table, orjson.dumps({**ALARM, "audit": 1}), topic="plant.line3",
                          source="kafka")
    assert isinstance(reading, Fanout)
    kinds = {part.mapped.route if isinstance(part, Event) else part.route: type(part)
             for part in reading.parts}
    # audit has no key at meta.key and the message none of its own: a dead letter of its own
    assert kinds == {"line3": Event, "audit": Refused, "nokey": Refused}
    assert isinstance(read_routed(table, b"not json", topic="t", source="kafka"), Refused)
    nothing = read_routed(routes(), b'{"type": "INFO"}', topic="plant.line3", source="kafka")
    assert isinstance(nothing, Fanout) and nothing.filtered and "line3" in nothing.detail


def test_a_route_key_is_never_in_a_repr() -> None:
    assert "il1apiline3key000000001" not in repr(routes())


@pytest.mark.parametrize(("text", "said"), [
    ('[[route]]\nname = "r"\nsumary = "x"', "unknown setting 'sumary'"),
    ('[[route]]\nname = "a b"', "name must be"),
    ('[[route]]\nsummary = "x"', "name must be"),
    ('[[route]]\nname = "default"', "the mapping flags' route"),
    ('[[route]]\nname = "r"\n[[route]]\nname = "r"', "route name r is used twice"),
    ('[[route]]\nname = "r"\nmatch = [{ path = "a", like = "x" }]', "like"),
    ('[[route]]\nname = "r"\nmatch = [{ path = "a", equals = "x", exists = true }]',
     "one of"),
    ('[[route]]\nname = "r"\nevent_type = "OPEN"', "event_type 'OPEN' is not one of"),
    ('[[route]]\nname = "r"\nevent_type = { path = "s", open = "x" }', "event_type.open"),
    ('[[route]]\nname = "r"\npriority = { path = "s", default = "MEDIUM" }', "MEDIUM"),
    ('[[route]]\nname = "r"\nsummary = "{{ payload.x"', "route 1 (r): summary: template"),
    ('[[route]]\nname = "r"\nintegration_key = "k"\nintegration_key_field = "a"', "not both"),
    ('[[route]]\nname = "r"\nkafka_topics = "^("', "not a regular expression"),
    ('[[route]]\nname = "r"\nlinks = [{ text = "x" }]', "with href"),
    ('[[route]]\nname = "r"\ncustom_details = "all"', "custom_details is"),
    ('route = 3', "array of tables"),
])
def test_a_route_that_does_not_load_is_one_clear_config_error(text: str, said: str) -> None:
    with pytest.raises(ConfigError, match=said.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("^", r"\^")) as caught:
        load_routes(tomllib.loads(text)["route"], where="ilagent.toml")
    assert str(caught.value).startswith("ilagent.toml")


def test_a_message_no_route_can_take_is_filtered_from_its_bytes_json_or_not() -> None:
    """The raw bytes decide when they show that no route of the topic can take the message:
    filtered, with each route's reason, even when the bytes are no JSON (no dead letter)."""
    for payload in (b'{"kind": "TELEMETRY", "value": 3}', b"TELEMETRY v=3 (no JSON)"):
        reading = read_routed(routes(), payload, topic="plant.line3", source="kafka")
        assert isinstance(reading, Fanout) and reading.filtered
        assert reading.passed == ("line3", "audit")
        assert reading.detail == "line3: not type = 'ALARM'; audit: not audit exists"
    # bytes that could hold a match are parsed: no JSON is refused as before
    refused = read_routed(routes(), b'"type": "ALARM", "audit"', topic="plant.line3",
                          source="kafka")
    assert isinstance(refused, Refused)
    # an escape could spell the key: parsed, and the parsed message is filtered the same way
    escaped = read_routed(routes(), b'{"\\u0074ype": "INFO"}', topic="plant.line3",
                          source="kafka")
    assert isinstance(escaped, Fanout) and escaped.filtered


_VALUES = st.sampled_from(["ALARM", "SET", "CLR", "Äla", "a/b", "", "x\"y", "tab\t"])
_SCALARS = _VALUES | st.integers(-2, 2) | st.booleans() | st.none()
_DOCUMENTS = st.recursive(
    _SCALARS, lambda inner: st.dictionaries(st.sampled_from(["type", "state", "Äla", "x\"y", "m"]),
                                            inner, max_size=3), max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(document=st.dictionaries(st.sampled_from(["type", "state", "meta", "Äla", "x\"y"]),
                                _DOCUMENTS, max_size=4),
       path=st.sampled_from(["type", "state", "meta.state", "Äla", "x\"y"]),
       test=st.sampled_from(["equals", "in", "exists"]),
       wanted=st.lists(_VALUES | st.integers(-2, 2) | st.booleans(), min_size=1, max_size=2),
       ascii_only=st.booleans())
def test_the_raw_check_never_refuses_what_a_route_takes(
        document: dict[str, Any], path: str, test: str, wanted: list[Any],
        ascii_only: bool) -> None:
    """Property: bytes a route's raw check rules out are bytes of a message the route does
    not take, whatever the message and however JSON writes it."""
    value: Any = wanted if test == "in" else wanted[0] if test == "equals" \
        else isinstance(wanted[0], bool) and wanted[0]
    table = load_routes([{"name": "r", "integration_key": "il1apiX", "match": [
        {"path": path, test: value}]}], where="test")
    payload = json.dumps(document, ensure_ascii=ascii_only).encode()
    if b"\\" not in payload and table[0].raw_refusal(payload) is not None:
        assert table[0].refusal(json.loads(payload)) is not None
