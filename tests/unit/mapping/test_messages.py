"""Table tests of ``ilagent.mapping.messages``: each rule of ilagent 0.9's consumer mapping (ref. §7)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guide import guide_rules
from ilagent.mapping.messages import (
    Dropped,
    DropReason,
    Mapped,
    MappingRules,
    filter_reason,
    heartbeat_key,
    map_message,
    raw_filter_reason,
    raw_survivors,
)

TOPIC = "plant/alarms"
KEY = "il1api123..."
DEFAULT_SUMMARY = f"New alert from {TOPIC}"

GUIDE_RULES = guide_rules(KEY)


def encode(payload: Any) -> bytes:
    """A JSON payload as message bytes; ``bytes`` pass through untouched."""
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def run(
    payload: Any,
    rules: MappingRules | None = None,
    *,
    message_key: bytes | None = None,
    source: str = "kafka",
) -> Mapped | Dropped:
    return map_message(
        rules or MappingRules(),
        encode(payload),
        topic=TOPIC,
        message_key=message_key,
        source=source,
    )


def with_key(rules: MappingRules) -> MappingRules:
    """``rules`` plus ``--event_key``, so a table row only lists the flags it is about."""
    return replace(rules, event_key=KEY)


def mapped(payload: Any, rules: MappingRules | None = None, **kwargs: Any) -> Mapped:
    result = run(payload, rules, **kwargs)
    assert isinstance(result, Mapped), result
    return result


def dropped(payload: Any, rules: MappingRules | None = None, **kwargs: Any) -> Dropped:
    result = run(payload, rules, **kwargs)
    assert isinstance(result, Dropped), result
    return result


# --- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"not json", id="plain-text"),
        pytest.param(b'{"integrationKey": "k",', id="truncated-object"),
        pytest.param(b'{"integrationKey": "k",}', id="trailing-comma"),
        pytest.param(b"{'integrationKey': 'k'}", id="single-quotes"),
        pytest.param(b"", id="empty-payload"),
        pytest.param(None, id="no-payload"),
        pytest.param(b"   ", id="whitespace-only"),
        pytest.param(b"\xff\xfe{}", id="invalid-utf8-bytes"),
        pytest.param(
            b'{"integrationKey": "k", "summary": "\xc3"}', id="invalid-utf8-inside-object"
        ),
        pytest.param(b'\xef\xbb\xbf{"integrationKey": "k"}', id="utf8-bom"),
    ],
)
def test_unparseable_payload_is_dropped_as_invalid_json(payload: bytes | None) -> None:
    """A payload that is not UTF-8 JSON text is dropped as invalid_json."""
    result = map_message(MappingRules(event_key=KEY), payload, topic=TOPIC)
    assert isinstance(result, Dropped)
    assert result.reason is DropReason.INVALID_JSON
    assert not result.filtered


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        pytest.param(b"\xff\xfe{}", "byte 0 is ff", id="first-byte"),
        pytest.param(b'{"summary": "Kessel \xfcberhitzt"}', "byte 20 is fc", id="latin-1"),
        pytest.param(b'{"summary": "\xed\xa0\x80"}', "byte 13 is ed", id="encoded-surrogate"),
    ],
)
def test_bytes_that_are_not_utf8_are_named_in_the_reason(payload: bytes, named: str) -> None:
    """The reason names the first byte that is not UTF-8 and where it is, not the parser's
    'surrogates not allowed' at line 1 column 1, which it says for any bad byte."""
    result = dropped(payload, MappingRules(event_key=KEY))
    assert result.detail == f"not valid JSON: the bytes are not UTF-8 ({named})", result.detail


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"[]", id="empty-array"),
        pytest.param(b'["k", "ALERT", "summary"]', id="array"),
        pytest.param(b'"ALERT"', id="string"),
        pytest.param(b"42", id="number"),
        pytest.param(b"true", id="bool"),
        pytest.param(b"null", id="null"),
    ],
)
def test_json_that_is_not_an_object_is_dropped_as_invalid_message(payload: bytes) -> None:
    """Valid JSON other than an object is dropped as invalid_message, even with --event_key."""
    result = dropped(payload, MappingRules(event_key=KEY))
    assert result.reason is DropReason.INVALID_MESSAGE


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b'{"integrationKey": "k", "value": NaN}', id="NaN"),
        pytest.param(b'{"integrationKey": "k", "value": Infinity}', id="Infinity"),
        pytest.param(b'{"integrationKey": "k", "value": -Infinity}', id="minus-Infinity"),
        pytest.param(b'{"integrationKey": "k", "value": 1e400}', id="float-out-of-range"),
        pytest.param(b'{"integrationKey": "k", "value": "\\ud800"}', id="lone-surrogate-escape"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nesting-deeper-than-the-recursion-limit"),
    ],
)
def test_json_that_serde_json_rejects_is_dropped_as_invalid_json(payload: bytes) -> None:
    """JSON extensions and limits that ilagent's parser refuses drop the message as invalid_json."""
    result = map_message(MappingRules(event_key=KEY), payload, topic=TOPIC)
    assert isinstance(result, Dropped)
    assert result.reason is DropReason.INVALID_JSON


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"integrationKey": "k", "alertKey": 123}, id="alertKey-number"),
        pytest.param({"integrationKey": "k", "summary": 5}, id="summary-number"),
        pytest.param({"integrationKey": "k", "details": {"a": 1}}, id="details-object"),
        pytest.param({"integrationKey": "k", "eventType": ["ALERT"]}, id="eventType-array"),
        pytest.param({"integrationKey": "k", "priority": 1}, id="priority-number"),
        pytest.param({"integrationKey": 1}, id="integrationKey-number"),
        pytest.param({"apiKey": True}, id="apiKey-bool"),
        pytest.param({"integrationKey": "k", "images": "x"}, id="images-string"),
        pytest.param({"integrationKey": "k", "images": {"src": "a"}}, id="images-object"),
        pytest.param({"integrationKey": "k", "images": ["x"]}, id="images-item-string"),
        pytest.param({"integrationKey": "k", "images": [{"href": "h"}]}, id="image-without-src"),
        pytest.param({"integrationKey": "k", "images": [{"src": 1}]}, id="image-src-number"),
        pytest.param({"integrationKey": "k", "links": "x"}, id="links-string"),
        pytest.param({"integrationKey": "k", "links": [{"text": "t"}]}, id="link-without-href"),
        pytest.param({"integrationKey": "k", "links": [{"href": 5}]}, id="link-href-number"),
    ],
)
def test_known_field_with_wrong_type_rejects_the_whole_message(payload: dict[str, Any]) -> None:
    """A known event field holding the wrong JSON type drops the message as invalid_message."""
    result = dropped(payload, MappingRules(event_key=KEY))
    assert result.reason is DropReason.INVALID_MESSAGE


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"images": [{"src": "a", "href": 5}]}, id="image-href-number"),
        pytest.param({"images": [{"src": "a", "alt": False}]}, id="image-alt-bool"),
        pytest.param({"links": [{"href": "h", "text": 1}]}, id="link-text-number"),
    ],
)
def test_image_or_link_item_with_wrong_optional_field_type_rejects_the_message(
    payload: dict[str, Any],
) -> None:
    """A non-string optional member of an image or link item fails the typed parse too."""
    result = dropped(payload, MappingRules(event_key=KEY))
    assert result.reason is DropReason.INVALID_MESSAGE


def test_unknown_fields_of_any_type_and_null_known_fields_are_accepted() -> None:
    """Unknown keys are ignored whatever their type; a known field that is null counts as absent."""
    payload = {
        "integrationKey": "k",
        "alertKey": None,
        "summary": None,
        "images": None,
        "links": None,
        "priority": None,
        "extra": [1, {"deep": True}],
        "count": 7,
    }
    event = mapped(payload).event
    assert event["summary"] == DEFAULT_SUMMARY
    for absent in ("alertKey", "images", "links", "priority", "extra", "count"):
        assert absent not in event


def test_the_filter_runs_before_the_type_check() -> None:
    """A message the filter drops is filtered even when a field has the wrong type (a dead
    letter is for a message that passes the filter); one that passes is still refused."""
    rules = MappingRules(event_key=KEY, filter_key="type", filter_val="ALARM")
    assert dropped({"type": "INFO", "alertKey": 123}, rules).reason is DropReason.FILTERED
    assert dropped({"type": "ALARM", "alertKey": 123}, rules).reason is \
        DropReason.INVALID_MESSAGE


@pytest.mark.parametrize(("payload", "reason"), [
    pytest.param(b"not json at all", DropReason.FILTERED, id="not-json-without-the-value"),
    pytest.param(b"\xff\xfe type ALARM", DropReason.FILTERED, id="bad-utf8-without-quotes"),
    pytest.param(b"", DropReason.FILTERED, id="empty"),
    pytest.param(b'{"type": "ALARM", oops', DropReason.INVALID_JSON, id="not-json-with-the-value"),
    pytest.param(b'{"kind": "ALARM"}', DropReason.FILTERED, id="value-without-the-key"),
    pytest.param(b'{"type": "INFO", "note": "ALARM"}', DropReason.FILTERED,
                 id="both-strings-elsewhere-parsed-and-filtered"),
])
def test_what_cannot_match_the_filter_is_filtered(payload: bytes, reason: DropReason) -> None:
    """Bytes that cannot hold type=ALARM are filtered without parsing, JSON or not; bytes that
    hold both strings are parsed and judged as before."""
    rules = MappingRules(event_key=KEY, filter_key="type", filter_val="ALARM")
    assert dropped(payload, rules).reason is reason


@pytest.mark.parametrize("payload", [
    pytest.param(b'{"type": "\\u0041LARM"}', id="value-spelled-with-an-escape"),
    pytest.param(b'{"\\u0074ype": "ALARM"}', id="key-spelled-with-an-escape"),
])
def test_escapes_never_hide_a_message_from_the_filter(payload: bytes) -> None:
    """A message that spells the key or the value with a JSON escape still passes."""
    rules = MappingRules(event_key=KEY, filter_key="type", filter_val="ALARM")
    assert mapped(payload, rules).event["eventType"] == "ALERT"


@pytest.mark.parametrize(("key", "value"), [("ty\"pe", "ALARM"), ("type", "A\\B"),
                                            ("type", "line\nbreak"), ("type", "\udcff")])
def test_a_filter_json_must_escape_rules_out_nothing_raw(key: str, value: str) -> None:
    """Filter strings that JSON writes with an escape (or cannot write) rule nothing out on
    the raw bytes: the parsed message decides."""
    rules = MappingRules(event_key=KEY, filter_key=key, filter_val=value)
    assert raw_filter_reason(rules, b"anything") is None


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                               max_size=3),
    max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(document=st.dictionaries(st.sampled_from(["type", "tÿpe", "kind", "t\"y"]) | st.text(
           max_size=6), _JSON_VALUES, max_size=4),
       key=st.sampled_from(["type", "tÿpe", "t\"y"]),
       value=st.none() | st.sampled_from(["ALARM", "ÄLARM", "", "a/b"]),
       ascii_only=st.booleans())
def test_the_raw_check_never_drops_what_the_filter_passes(
        document: dict[str, Any], key: str, value: str | None, ascii_only: bool) -> None:
    """Property: whatever the message and however JSON writes it, bytes the raw check rules
    out are bytes the parsed filter would drop too."""
    rules = MappingRules(event_key=KEY, filter_key=key, filter_val=value)
    payload = json.dumps(document, ensure_ascii=ascii_only).encode()
    if raw_filter_reason(rules, payload) is not None:
        assert filter_reason(rules, json.loads(payload)) is not None


_PIECES = st.sampled_from([b'"type"', b'"ALARM"', b'"AL', b'ARM"', b'"', b"\\", b":", b"{",
                           b"}", b" ", b'"ty', b'pe"', b"x" * 40, "\u00ff".encode()])


@settings(max_examples=400, deadline=None)
@given(payloads=st.lists(st.none() | st.lists(_PIECES, max_size=6).map(b"".join),
                         max_size=30),
       value=st.none() | st.just("ALARM"), limit=st.sampled_from([1, 7, 64, 4 << 20]))
def test_a_batch_search_keeps_every_payload_the_raw_check_cannot_rule_out(
        payloads: list[bytes | None], value: str | None, limit: int) -> None:
    """Property: the one search over a batch (in parts of ``limit`` bytes, needles spanning two
    payloads included) keeps every payload the raw check alone would keep, in order; what it
    leaves out is what the raw check drops."""
    rules = MappingRules(event_key=KEY, filter_key="type", filter_val=value)
    survivors = raw_survivors(rules, payloads, limit=limit)
    assert survivors is not None and survivors == sorted(set(survivors))
    kept = {index for index, payload in enumerate(payloads)
            if raw_filter_reason(rules, payload) is None}
    assert kept <= set(survivors)
    assert all(0 <= index < len(payloads) for index in survivors)


def test_a_batch_search_without_needles_rules_nothing_out() -> None:
    """No filter, or one that JSON writes with an escape: nothing is told from raw bytes."""
    assert raw_survivors(MappingRules(event_key=KEY), [b"x"]) is None
    assert raw_survivors(MappingRules(event_key=KEY, filter_key="t\"y"), [b"x"]) is None
    assert raw_survivors(MappingRules(event_key=KEY, filter_key="type", filter_val="ALARM"),
                         [b'{"type": "INFO"}', b'{"type": "ALARM"}', None, b"{}"]) == [1]


# --- filter ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filter_key", "filter_val", "payload", "passes"),
    [
        pytest.param("type", None, {}, False, id="key-absent"),
        pytest.param("type", None, {"type": None}, True, id="null-counts-as-present"),
        pytest.param("type", None, {"type": 123}, True, id="key-only-number-passes"),
        pytest.param("type", None, {"type": False}, True, id="key-only-bool-passes"),
        pytest.param("type", None, {"type": {"a": 1}}, True, id="key-only-object-passes"),
        pytest.param("type", None, {"type": ""}, True, id="key-only-empty-string-passes"),
        pytest.param("type", "ALARM", {"type": "ALARM"}, True, id="exact-match"),
        pytest.param("type", "ALARM", {"type": "INFO"}, False, id="other-value"),
        pytest.param("type", "ALARM", {"type": "alarm"}, False, id="case-sensitive"),
        pytest.param("type", "ALARM", {"type": "ALARM "}, False, id="no-trimming"),
        pytest.param("type", "ALARM", {}, False, id="value-given-key-absent"),
        pytest.param("type", "123", {"type": 123}, False, id="string-never-equals-number"),
        pytest.param("type", "true", {"type": True}, False, id="string-never-equals-bool"),
        pytest.param("type", "null", {"type": None}, False, id="null-never-matches-a-value"),
        pytest.param("type", "", {"type": ""}, True, id="empty-value-matches-empty-string"),
        pytest.param(
            "meta.type", None, {"meta": {"type": "ALARM"}}, False, id="dot-key-is-not-a-path"
        ),
        pytest.param("meta.type", "ALARM", {"meta.type": "ALARM"}, True, id="dot-key-is-literal"),
        pytest.param("type", "ALARM", {"data": {"type": "ALARM"}}, False, id="top-level-only"),
        pytest.param(None, "ALARM", {"type": "INFO"}, True, id="value-without-key-is-ignored"),
    ],
)
def test_filter(
    filter_key: str | None, filter_val: str | None, payload: dict[str, Any], passes: bool
) -> None:
    """--filter_key needs the top-level key (null counts); --filter_val an equal JSON string."""
    rules = MappingRules(event_key=KEY, filter_key=filter_key, filter_val=filter_val)
    result = run(payload, rules)
    if passes:
        assert isinstance(result, Mapped), result
    else:
        assert isinstance(result, Dropped), result
        assert result.reason is DropReason.FILTERED
        assert result.filtered


def test_filter_looks_at_the_payload_not_at_mapped_fields() -> None:
    """The filter runs before the mappings, so a mapped value cannot make a message pass."""
    rules = MappingRules(
        event_key=KEY, map_key_summary="comment", filter_key="summary", filter_val="door open"
    )
    assert dropped({"comment": "door open"}, rules).filtered


# --- key ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "event_key", "expected"),
    [
        pytest.param({"integrationKey": "payload-key"}, None, "payload-key", id="integrationKey"),
        pytest.param({"apiKey": "legacy-key"}, None, "legacy-key", id="apiKey-alias"),
        pytest.param(
            {"integrationKey": "new", "apiKey": "old"}, None, "new", id="integrationKey-preferred"
        ),
        pytest.param(
            {"integrationKey": None, "apiKey": "old"}, None, "old", id="null-integrationKey"
        ),
        pytest.param({"integrationKey": "payload-key"}, KEY, KEY, id="event_key-overrides"),
        pytest.param({"apiKey": "legacy-key"}, KEY, KEY, id="event_key-overrides-apiKey"),
        pytest.param({}, KEY, KEY, id="event_key-fills-in"),
    ],
)
def test_integration_key(payload: dict[str, Any], event_key: str | None, expected: str) -> None:
    """--event_key beats the payload's key, which is integrationKey, else its alias apiKey."""
    result = mapped(payload, MappingRules(event_key=event_key))
    assert result.event["integrationKey"] == expected
    assert result.integration_key == expected
    assert result.path == f"/v1/events/kafka/{expected}"
    assert "apiKey" not in result.event


@pytest.mark.parametrize(
    ("payload", "event_key"),
    [
        pytest.param({"eventType": "ALERT", "summary": "s"}, None, id="no-key"),
        pytest.param({"integrationKey": ""}, None, id="empty-integrationKey"),
        pytest.param({"apiKey": ""}, None, id="empty-apiKey"),
        pytest.param({"integrationKey": "k"}, "", id="empty-event_key"),
    ],
)
def test_message_without_a_key_is_dropped_as_no_key(
    payload: dict[str, Any], event_key: str | None
) -> None:
    """With no usable integration key anywhere the message is dropped as no_key, not posted."""
    result = dropped(payload, MappingRules(event_key=event_key))
    assert result.reason is DropReason.NO_KEY


# --- field mappings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "payload", "field", "expected"),
    [
        pytest.param(
            MappingRules(map_key_alert_key="mCode"),
            {"mCode": "M1"},
            "alertKey",
            "M1",
            id="alertKey-top-level",
        ),
        pytest.param(
            MappingRules(map_key_alert_key="meta.code"),
            {"meta": {"code": "M-200"}},
            "alertKey",
            "M-200",
            id="alertKey-nested",
        ),
        pytest.param(
            MappingRules(map_key_alert_key="a.b.c"),
            {"a": {"b": {"c": "deep"}}},
            "alertKey",
            "deep",
            id="alertKey-three-levels",
        ),
        pytest.param(
            MappingRules(map_key_alert_key="mCode"),
            {"mCode": "M1", "alertKey": "own"},
            "alertKey",
            "M1",
            id="mapping-beats-payload-field",
        ),
        pytest.param(
            MappingRules(map_key_alert_key="items.0.code"),
            {"items": [{"code": "X"}], "alertKey": "own"},
            "alertKey",
            "own",
            id="no-array-index",
        ),
        pytest.param(
            MappingRules(map_key_alert_key="a.b"),
            {"a.b": "X", "alertKey": "own"},
            "alertKey",
            "own",
            id="key-with-dot-unreachable",
        ),
        pytest.param(
            MappingRules(map_key_alert_key="a..b"),
            {"a": {"": {"b": "X"}}},
            "alertKey",
            "X",
            id="empty-segment-is-key-empty-string",
        ),
        pytest.param(
            MappingRules(map_key_alert_key="data.missing"),
            {"data": {"other": "v"}, "alertKey": "own"},
            "alertKey",
            "own",
            id="missing-path-keeps-payload-field",
        ),
        pytest.param(
            MappingRules(map_key_alert_key="data.code"),
            {"data": "not-an-object", "alertKey": "own"},
            "alertKey",
            "own",
            id="path-through-a-string",
        ),
        pytest.param(
            MappingRules(map_key_alert_key="data.missing"),
            {"data": {}},
            "alertKey",
            None,
            id="missing-path-no-payload-field",
        ),
        pytest.param(
            MappingRules(map_key_summary="comment"),
            {"comment": "door open", "summary": "own"},
            "summary",
            "door open",
            id="summary",
        ),
        pytest.param(
            MappingRules(map_key_summary="data.message"),
            {"data": {"message": "Nested summary"}},
            "summary",
            "Nested summary",
            id="summary-nested",
        ),
        pytest.param(
            MappingRules(map_key_summary="comment"),
            {"comment": ""},
            "summary",
            "",
            id="summary-mapped-to-empty-string",
        ),
        pytest.param(
            MappingRules(map_key_summary="data.nonexistent.deep"),
            {"data": {"other": "value"}},
            "summary",
            DEFAULT_SUMMARY,
            id="summary-missing-path-gets-default",
        ),
        pytest.param(
            MappingRules(map_key_etype="state"),
            {"state": "RESOLVE", "eventType": "ALERT"},
            "eventType",
            "RESOLVE",
            id="eventType",
        ),
        pytest.param(
            MappingRules(map_key_etype="status.type"),
            {"status": {"type": "ACCEPT"}},
            "eventType",
            "ACCEPT",
            id="eventType-nested",
        ),
        pytest.param(
            MappingRules(map_key_etype="status.type"),
            {"status": {}, "eventType": "RESOLVE"},
            "eventType",
            "RESOLVE",
            id="eventType-missing-path-keeps-payload-field",
        ),
    ],
)
def test_field_mapping(
    rules: MappingRules, payload: dict[str, Any], field: str, expected: str | None
) -> None:
    """A --map_key_* dot path reaching a string sets the field; a missing path changes nothing."""
    result = mapped(payload, with_key(rules))
    assert result.event.get(field) == expected
    assert result.warnings == ()


@pytest.mark.parametrize(
    ("option", "field", "value"),
    [
        pytest.param("map_key_alert_key", "alertKey", 42, id="alertKey-number"),
        pytest.param("map_key_alert_key", "alertKey", {"code": "M1"}, id="alertKey-object"),
        pytest.param("map_key_alert_key", "alertKey", None, id="alertKey-null"),
        pytest.param("map_key_summary", "summary", True, id="summary-bool"),
        pytest.param("map_key_summary", "summary", ["a"], id="summary-array"),
        pytest.param("map_key_etype", "eventType", 1, id="eventType-number"),
    ],
)
def test_non_string_mapped_value_warns_and_leaves_the_field_unchanged(
    option: str, field: str, value: Any
) -> None:
    """A mapped path holding no string gives a warning and keeps the payload's own field."""
    own = {"alertKey": "own-key", "summary": "own summary", "eventType": "RESOLVE"}
    rules = MappingRules(event_key=KEY, **{option: "data.value"})
    result = mapped({**own, "data": {"value": value}}, rules)
    assert result.event[field] == own[field]
    assert len(result.warnings) == 1
    assert f"--{option}" in result.warnings[0]


def test_warnings_are_kept_when_the_message_is_then_dropped() -> None:
    """A mapping warning is still reported on a message that ends up dropped."""
    rules = MappingRules(map_key_alert_key="code")
    result = dropped({"code": 7}, rules)
    assert result.reason is DropReason.NO_KEY
    assert len(result.warnings) == 1


# --- value mappings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "payload", "expected"),
    [
        pytest.param(
            MappingRules(map_key_etype="state", map_val_etype_alert="SET"),
            {"state": "SET"},
            "ALERT",
            id="alert",
        ),
        pytest.param(
            MappingRules(map_key_etype="state", map_val_etype_accept="ACK"),
            {"state": "ACK"},
            "ACCEPT",
            id="accept",
        ),
        pytest.param(
            MappingRules(map_key_etype="state", map_val_etype_resolve="CLR"),
            {"state": "CLR"},
            "RESOLVE",
            id="resolve",
        ),
        pytest.param(
            MappingRules(map_key_etype="eventType", map_val_etype_alert="SET"),
            {"eventType": "SET"},
            "ALERT",
            id="map_key_etype-may-name-eventType",
        ),
        pytest.param(
            MappingRules(map_key_etype="s.v", map_val_etype_resolve="0"),
            {"s": {"v": "0"}},
            "RESOLVE",
            id="nested-raw-value",
        ),
        pytest.param(
            MappingRules(
                map_key_etype="state",
                map_val_etype_alert="X",
                map_val_etype_accept="X",
                map_val_etype_resolve="X",
            ),
            {"state": "X"},
            "RESOLVE",
            id="resolve-beats-accept-and-alert",
        ),
        pytest.param(
            MappingRules(map_key_etype="state", map_val_etype_alert="X", map_val_etype_accept="X"),
            {"state": "X"},
            "ACCEPT",
            id="accept-beats-alert",
        ),
        pytest.param(
            MappingRules(map_key_etype="state", map_val_etype_alert="X", map_val_etype_resolve="X"),
            {"state": "X"},
            "RESOLVE",
            id="resolve-beats-alert",
        ),
        pytest.param(
            MappingRules(map_val_etype_accept=""),
            {"eventType": "RESOLVE"},
            "ACCEPT",
            id="empty-map_val-without-map_key-matches-everything",
        ),
        pytest.param(
            MappingRules(map_key_etype="state", map_val_etype_resolve=""),
            {"eventType": "ALERT"},
            "RESOLVE",
            id="empty-map_val-matches-a-missing-path",
        ),
        pytest.param(
            MappingRules(map_key_etype="state", map_val_etype_resolve=""),
            {"state": 5, "eventType": "ALERT"},
            "RESOLVE",
            id="empty-map_val-matches-a-non-string-value",
        ),
        pytest.param(
            MappingRules(map_key_etype="state", map_val_etype_alert="SET"),
            {"state": "RESOLVE"},
            "RESOLVE",
            id="valid-unmapped-value-kept",
        ),
    ],
)
def test_value_mapping(rules: MappingRules, payload: dict[str, Any], expected: str) -> None:
    """--map_val_etype_* compare with the raw --map_key_etype string; RESOLVE > ACCEPT > ALERT."""
    result = mapped(payload, with_key(rules))
    assert result.event["eventType"] == expected


@pytest.mark.parametrize(
    ("rules", "payload", "bad_type"),
    [
        pytest.param(
            MappingRules(map_val_etype_alert="SET"),
            {"eventType": "SET"},
            "SET",
            id="map_val-without-map_key-does-nothing",
        ),
        pytest.param(
            MappingRules(map_key_etype="state", map_val_etype_alert="SET"),
            {"state": "UNKNOWN"},
            "UNKNOWN",
            id="unmapped-value-kept-verbatim",
        ),
        pytest.param(
            MappingRules(map_key_etype="state", map_val_etype_alert="SET"),
            {"state": "set"},
            "set",
            id="value-mapping-is-case-sensitive",
        ),
        pytest.param(
            MappingRules(map_key_etype="state", map_val_etype_alert="SET"),
            {"state": "X", "eventType": "SET"},
            "X",
            id="compares-the-raw-value-not-eventType",
        ),
        pytest.param(MappingRules(), {"eventType": "alert"}, "alert", id="lower-case-alert"),
        pytest.param(MappingRules(), {"eventType": "UPDATE"}, "UPDATE", id="unknown-type"),
    ],
)
def test_event_type_that_stays_invalid_is_dropped(
    rules: MappingRules, payload: dict[str, Any], bad_type: str
) -> None:
    """An eventType left outside ALERT/ACCEPT/RESOLVE/COMMENT is dropped as invalid_event_type."""
    result = dropped(payload, with_key(rules))
    assert result.reason is DropReason.INVALID_EVENT_TYPE
    assert repr(bad_type) in result.detail


# --- default summary ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "payload", "expected"),
    [
        pytest.param(MappingRules(), {}, DEFAULT_SUMMARY, id="no-type-no-summary"),
        pytest.param(MappingRules(), {"eventType": "ALERT"}, DEFAULT_SUMMARY, id="alert"),
        pytest.param(MappingRules(), {"summary": None}, DEFAULT_SUMMARY, id="null-summary"),
        pytest.param(MappingRules(), {"summary": ""}, "", id="empty-summary-is-kept"),
        pytest.param(MappingRules(), {"summary": "own"}, "own", id="own-summary"),
        pytest.param(MappingRules(), {"eventType": "RESOLVE"}, "", id="resolve-gets-empty"),
        pytest.param(MappingRules(), {"eventType": "ACCEPT"}, "", id="accept-gets-empty"),
        pytest.param(MappingRules(), {"eventType": "COMMENT"}, "", id="comment-gets-empty"),
        pytest.param(
            MappingRules(map_key_etype="state", map_val_etype_alert="SET"),
            {"state": "SET"},
            DEFAULT_SUMMARY,
            id="mapped-to-alert",
        ),
        pytest.param(
            MappingRules(map_key_etype="state", map_val_etype_resolve="CLR"),
            {"state": "CLR", "eventType": "ALERT"},
            "",
            id="mapped-to-resolve",
        ),
    ],
)
def test_default_summary(rules: MappingRules, payload: dict[str, Any], expected: str) -> None:
    """Only an ALERT (or untyped) event without a summary key gets "New alert from <topic>"."""
    result = mapped(payload, with_key(rules))
    assert result.event["summary"] == expected


@pytest.mark.parametrize(
    ("rules", "payload"),
    [
        pytest.param(MappingRules(), {"eventType": ""}, id="payload-empty-eventType"),
        pytest.param(MappingRules(map_key_etype="state"), {"state": ""}, id="mapped-empty-value"),
    ],
)
def test_empty_event_type_is_not_alert(rules: MappingRules, payload: dict[str, Any]) -> None:
    """eventType "" is present but invalid: no default, so it is dropped as invalid_event_type."""
    result = dropped(payload, with_key(rules))
    assert result.reason is DropReason.INVALID_EVENT_TYPE


# --- the whole event ------------------------------------------------------------------------


def test_minimal_object_with_event_key_becomes_a_default_alert() -> None:
    """{} with --event_key is an ALERT for that key, summary and customDetails filled in."""
    result = mapped({}, MappingRules(event_key=KEY), message_key=b"order-7")
    assert result.event == {
        "integrationKey": KEY,
        "eventType": "ALERT",
        "summary": DEFAULT_SUMMARY,
        "customDetails": {"messageKey": "order-7", "topic": TOPIC},
    }
    assert result.path == f"/v1/events/kafka/{KEY}"
    assert result.warnings == ()
    assert result.alert_key is None


def test_full_payload_passes_through_in_ilert_key_order() -> None:
    """A complete payload keeps every field; the body starts integrationKey, eventType, summary."""
    payload = {
        "customDetails": {"env": "prod"},
        "links": [{"href": "https://l", "text": "t"}],
        "images": [{"src": "https://i", "href": "https://h", "alt": "a"}],
        "priority": "HIGH",
        "alertKey": "alert-123",
        "details": "Detail text",
        "summary": "Resolved",
        "eventType": "RESOLVE",
        "apiKey": "key1",
    }
    result = mapped(payload)
    assert list(result.event)[:3] == ["integrationKey", "eventType", "summary"]
    assert result.event == {
        "integrationKey": "key1",
        "eventType": "RESOLVE",
        "summary": "Resolved",
        "details": "Detail text",
        "alertKey": "alert-123",
        "priority": "HIGH",
        "images": [{"src": "https://i", "href": "https://h", "alt": "a"}],
        "links": [{"href": "https://l", "text": "t"}],
        "customDetails": {"env": "prod"},
    }
    assert result.alert_key == "alert-123"


def test_null_fields_are_left_out_of_the_body() -> None:
    """Optional fields that are null in the payload do not appear in the event body at all."""
    event = mapped({"integrationKey": "k", "details": None, "alertKey": None}).event
    assert "details" not in event
    assert "alertKey" not in event


@pytest.mark.parametrize(
    ("message_key", "expected"),
    [
        pytest.param(b"order-7", "order-7", id="text-key"),
        pytest.param("Tür-1".encode(), "Tür-1", id="utf8-key"),
        pytest.param(None, "", id="no-key"),
        pytest.param(b"", "", id="empty-key"),
        pytest.param(b"\xff\xfe", "", id="invalid-utf8-key"),
    ],
)
def test_default_custom_details_name_the_kafka_key_and_topic(
    message_key: bytes | None, expected: str
) -> None:
    """Without customDetails the event gets {"messageKey": <key text or "">, "topic": <topic>}."""
    event = mapped({"integrationKey": "k"}, message_key=message_key).event
    assert event["customDetails"] == {"messageKey": expected, "topic": TOPIC}


@pytest.mark.parametrize(
    ("payload", "forward", "expected"),
    [
        pytest.param(
            {"integrationKey": "k", "customDetails": {"env": "prod"}},
            False,
            {"env": "prod"},
            id="own-kept",
        ),
        pytest.param(
            {"integrationKey": "k", "customDetails": {"env": "prod"}},
            True,
            {"env": "prod"},
            id="own-kept-when-forwarding",
        ),
        pytest.param(
            {"integrationKey": "k", "customDetails": "text"},
            False,
            "text",
            id="own-non-object-kept",
        ),
        pytest.param(
            {"integrationKey": "k", "customDetails": None},
            False,
            {"messageKey": "m", "topic": TOPIC},
            id="null-means-absent",
        ),
        pytest.param(
            {"apiKey": "secret", "temp": 91.5, "site": {"id": 3}},
            True,
            {"apiKey": "secret", "temp": 91.5, "site": {"id": 3}},
            id="forward-whole-payload-with-apiKey",
        ),
        pytest.param(
            {"integrationKey": "k", "customDetails": None, "x": 1},
            True,
            {"integrationKey": "k", "customDetails": None, "x": 1},
            id="forward-when-null",
        ),
    ],
)
def test_custom_details(payload: dict[str, Any], forward: bool, expected: Any) -> None:
    """The payload's own customDetails win, else the whole payload (forward) or Kafka defaults."""
    rules = MappingRules(forward_message_payload=forward)
    event = mapped(payload, rules, message_key=b"m").event
    assert event["customDetails"] == expected


def test_forwarded_payload_is_the_original_not_the_mapped_event() -> None:
    """--forward_message_payload sends the payload as received, without --event_key or mappings."""
    rules = MappingRules(event_key=KEY, map_key_summary="c", forward_message_payload=True)
    payload = {"integrationKey": "theirs", "c": "mapped summary"}
    event = mapped(payload, rules).event
    assert event["customDetails"] == payload
    assert event["integrationKey"] == KEY


@pytest.mark.parametrize(
    ("priority", "valid"),
    [
        pytest.param("HIGH", True, id="HIGH"),
        pytest.param("LOW", True, id="LOW"),
        pytest.param("MEDIUM", False, id="MEDIUM"),
        pytest.param("high", False, id="lower-case"),
        pytest.param("", False, id="empty"),
    ],
)
def test_priority(priority: str, valid: bool) -> None:
    """priority must be exactly HIGH or LOW, else the message is dropped as invalid_priority."""
    result = run({"integrationKey": "k", "priority": priority})
    if valid:
        assert isinstance(result, Mapped)
        assert result.event["priority"] == priority
    else:
        assert isinstance(result, Dropped)
        assert result.reason is DropReason.INVALID_PRIORITY


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("kafka", f"/v1/events/kafka/{KEY}", id="kafka"),
        pytest.param("mqtt", f"/v1/events/mqtt/{KEY}", id="mqtt"),
    ],
)
def test_event_path_names_the_source_and_the_key(source: str, expected: str) -> None:
    """Consumer events go to /v1/events/<source>/<integration key>."""
    assert mapped({}, MappingRules(event_key=KEY), source=source).path == expected


# --- the mapping example of ilert's Kafka guide ----------------------------------------------


@pytest.mark.parametrize(
    ("state", "event_type"),
    [
        pytest.param("SET", "ALERT", id="SET-alert"),
        pytest.param("ACK", "ACCEPT", id="ACK-accept"),
        pytest.param("CLR", "RESOLVE", id="CLR-resolve"),
    ],
)
def test_guide_example_maps_alarm_messages(state: str, event_type: str) -> None:
    """The guide's flags turn an ALARM message into an event keyed by mCode, comment as summary."""
    payload = {"type": "ALARM", "mCode": "M1", "comment": "door open", "state": state}
    result = mapped(payload, GUIDE_RULES)
    assert result.event == {
        "integrationKey": KEY,
        "eventType": event_type,
        "summary": "door open",
        "alertKey": "M1",
        "customDetails": {"messageKey": "", "topic": TOPIC},
    }
    assert result.path == f"/v1/events/kafka/{KEY}"


def test_guide_example_filters_out_other_message_types() -> None:
    """The guide's flags drop a message whose type is not ALARM as filtered."""
    payload = {"type": "INFO", "mCode": "M1", "comment": "door open", "state": "SET"}
    result = dropped(payload, GUIDE_RULES)
    assert result.reason is DropReason.FILTERED


# --- heartbeats -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(b'{"integrationKey": "il1hbt1"}', "il1hbt1", id="integrationKey"),
        pytest.param(b'{"apiKey": "hb-2"}', "hb-2", id="apiKey-alias"),
        pytest.param(b'{"integrationKey": "a", "apiKey": "b"}', "a", id="integrationKey-first"),
        pytest.param(b'{"integrationKey": null, "apiKey": "b"}', "b", id="null-integrationKey"),
        pytest.param(b'{"integrationKey": "k", "extra": [1]}', "k", id="extra-keys-ignored"),
        pytest.param(b'{"integrationKey": 5}', None, id="number-key"),
        pytest.param(b'{"integrationKey": ""}', None, id="empty-key"),
        pytest.param(b"{}", None, id="no-key"),
        pytest.param(b'["k"]', None, id="array"),
        pytest.param(b"not json", None, id="invalid-json"),
        pytest.param(b"", None, id="empty-payload"),
        pytest.param(None, None, id="no-payload"),
        pytest.param(b'{"integrationKey": "\xff"}', None, id="invalid-utf8"),
    ],
)
def test_heartbeat_key(payload: bytes | None, expected: str | None) -> None:
    """A heartbeat message names its key as integrationKey or apiKey; anything else yields None."""
    assert heartbeat_key(payload) == expected


def test_heartbeat_key_ignores_mapping_flags() -> None:
    """Heartbeat parsing takes no rules: --event_key and the mappings never apply to heartbeats."""
    assert heartbeat_key(b'{"mCode": "M1", "integrationKey": "hb"}') == "hb"
