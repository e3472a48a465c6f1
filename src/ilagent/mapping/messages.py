"""Kafka/MQTT message bytes → ilert event, or the reason it is dropped (pure; ilagent 0.9 rules).

The order of the steps matters: the filter (top-level key, string-only comparison) first —
on the raw bytes when they rule the message out (:func:`raw_filter_reason`), else on the parsed
object — then the typed check of the known fields, ``--event_key`` override, field mappings (dot paths),
event-type value mappings (compared only with the raw value the ``--map_key_etype`` path found;
RESOLVE beats ACCEPT beats ALERT), default summary, then ``customDetails`` defaults.

Two deliberate differences from ilagent, both about messages it would have lost anyway: an event
without any integration key is dropped here as ``NO_KEY`` instead of being posted to an empty
path and refused, and a payload carrying both ``integrationKey`` and ``apiKey`` uses
``integrationKey`` instead of being rejected as a duplicate field (any other repeated field
keeps its last value). The key is percent-encoded
in the URL path (ilagent inserts it raw), which changes nothing for ilert's key alphabet.

A message the filter cannot let through is *filtered*, whatever else is wrong with it: one that
is not JSON, or has a field of the wrong type, and does not hold the filter's value is dropped
as filtered — as ilagent 0.9 drops it — rather than dead-lettered (ilagent 0.9 checks types
before the filter; a dead letter is for a message that passes the filter and still cannot be
sent). Most messages of a busy topic are not alarms, and most of them are never parsed: when
the raw bytes do not hold the filter's key and value as JSON strings (``"type"``, ``"ALARM"``)
and hold no backslash (an escape such as ``\u0041`` could spell them otherwise), no string in
the message can be equal to them. A batch is told apart in one search over its joined bytes
(:func:`raw_survivors`), not one per message.
"""

from __future__ import annotations

import enum
import functools
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, cast
from urllib.parse import quote

import orjson

from ilagent.config import MappingRules
from ilagent.events import EVENT_TYPES, PRIORITIES

__all__ = ["DropReason", "Dropped", "Mapped", "MappingRules", "heartbeat_key", "map_message"]

# fields ilagent reads from a payload, with the JSON type each must have when present
_STRING_FIELDS = ("integrationKey", "apiKey", "eventType", "summary", "details", "alertKey",
                  "priority")
_TYPED_FIELDS = frozenset((*_STRING_FIELDS, "images", "links"))
FLAG_ROUTE = "default"  # the name of the one route the mapping flags form
_TARGETS = {"map_key_alert_key": "alertKey", "map_key_summary": "summary",
            "map_key_etype": "eventType"}


class DropReason(enum.StrEnum):
    """Why a message produces no event. ``FILTERED`` is expected; the rest are dead letters."""

    FILTERED = "filtered"
    INVALID_JSON = "invalid_json"
    INVALID_MESSAGE = "invalid_message"
    NO_KEY = "no_key"
    INVALID_EVENT_TYPE = "invalid_event_type"
    INVALID_PRIORITY = "invalid_priority"
    NO_EMAIL = "no_email"  # policy messages
    NO_ROUTING_KEY = "no_routing_key"


@dataclass(frozen=True)
class Mapped:
    """An event ready to send: its body and its API path below the ilert API base URL."""

    event: dict[str, Any]
    path: str
    warnings: tuple[str, ...] = ()
    # mapped paths the message does not have (ilagent 0.9 falls back silently; ``map`` says so)
    missing: tuple[str, ...] = ()
    route: str = FLAG_ROUTE  # the route that made it (the flags' one: ``default``)
    # the ilert fields a mapping asked for and the message did not give (mapping drift), and
    # those whose template failed on it
    missing_fields: tuple[str, ...] = ()
    template_errors: tuple[str, ...] = ()

    @property
    def integration_key(self) -> str:
        return str(self.event["integrationKey"])

    @property
    def alert_key(self) -> str | None:
        value = self.event.get("alertKey")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Dropped:
    """A message that yields no event, and why."""

    reason: DropReason
    detail: str
    warnings: tuple[str, ...] = field(default=())

    @property
    def filtered(self) -> bool:
        return self.reason is DropReason.FILTERED


def decode_text(data: bytes | None) -> str:
    """Message bytes as text the way ilagent reads them: absent or invalid UTF-8 becomes ``""``."""
    if not data:
        return ""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return ""


MISSING = object()


def lookup(document: Any, path: str) -> Any:
    """Follow a dot path through JSON objects (no array indices); ``MISSING`` when it breaks off."""
    current = document
    for key in path.split("."):
        if not isinstance(current, Mapping) or key not in current:
            return MISSING
        current = current[key]
    return current


@functools.lru_cache(maxsize=4096)
def event_path(source: str, integration_key: str) -> str:
    """The per-integration API path ilagent posts consumer events to (remembered: a daemon
    sends to a handful of keys, and quoting one costs more than the rest of its mapping)."""
    return f"/v1/events/{source}/{quote(integration_key, safe='')}"


def map_message(
    rules: MappingRules,
    payload: bytes | None,
    *,
    topic: str,
    message_key: bytes | None = None,
    source: str = "kafka",
) -> Mapped | Dropped:
    """Turn one consumed message into an ilert event, or say why it is dropped."""
    reason = raw_filter_reason(rules, payload)
    if reason:
        return Dropped(DropReason.FILTERED, reason)
    document = parse_object(payload)
    if isinstance(document, Dropped):
        return document
    reason = filter_reason(rules, document)
    if reason:
        return Dropped(DropReason.FILTERED, reason)
    problem = _type_problem(document)
    if problem:
        return Dropped(DropReason.INVALID_MESSAGE, problem)

    warnings: list[str] = []
    missing: list[str] = []
    event: dict[str, Any] = {k: document.get(k) for k in (
        "eventType", "summary", "details", "alertKey", "priority", "images", "links",
        "customDetails")}
    key = document.get("integrationKey")
    event["integrationKey"] = key if key is not None else document.get("apiKey")
    if rules.event_key is not None:
        event["integrationKey"] = rules.event_key
    for option, target in (("map_key_alert_key", "alertKey"), ("map_key_summary", "summary")):
        path = getattr(rules, option)
        if path is not None:
            value = lookup(document, path)
            if isinstance(value, str):
                event[target] = value
            elif value is not MISSING:
                warnings.append(f"--{option} '{path}' is not a string; ignored")
            else:
                missing.append(f"--{option} '{path}' is not in the message")
    raw_type = ""
    if rules.map_key_etype is not None:
        value = lookup(document, rules.map_key_etype)
        if isinstance(value, str):
            raw_type = event["eventType"] = value
        elif value is not MISSING:
            warnings.append(f"--map_key_etype '{rules.map_key_etype}' is not a string; ignored")
        else:
            missing.append(f"--map_key_etype '{rules.map_key_etype}' is not in the message")
    for configured, mapped in ((rules.map_val_etype_alert, "ALERT"),
                               (rules.map_val_etype_accept, "ACCEPT"),
                               (rules.map_val_etype_resolve, "RESOLVE")):
        if configured is not None and configured == raw_type:
            event["eventType"] = mapped
    if event["eventType"] is None:
        event["eventType"] = "ALERT"
    if event["summary"] is None and event["eventType"] == "ALERT":
        event["summary"] = f"New alert from {topic}"
    if event["customDetails"] is None:
        event["customDetails"] = (
            document if rules.forward_message_payload
            else {"topic": topic} if source == "mqtt"
            else {"messageKey": decode_text(message_key), "topic": topic}
        )
    event["integrationKey"] = event["integrationKey"] or ""
    event["summary"] = event["summary"] or ""
    body = {k: v for k, v in event.items() if v is not None}
    # ilagent refuses these before sending; so do we, as dead letters instead of silent drops
    if not body["integrationKey"]:
        return Dropped(DropReason.NO_KEY, "no integrationKey/apiKey and no --event_key",
                       tuple(warnings))
    if body["eventType"] not in EVENT_TYPES:
        return Dropped(DropReason.INVALID_EVENT_TYPE,
                       f"eventType {body['eventType']!r} is not one of {', '.join(EVENT_TYPES)}",
                       tuple(warnings))
    if "priority" in body and body["priority"] not in PRIORITIES:
        return Dropped(DropReason.INVALID_PRIORITY,
                       f"priority {body['priority']!r} is not HIGH or LOW", tuple(warnings))
    ordered = {"integrationKey": body.pop("integrationKey"), "eventType": body.pop("eventType"),
               "summary": body.pop("summary"), **body}
    return Mapped(ordered, event_path(source, ordered["integrationKey"]), tuple(warnings),
                  tuple(missing), missing_fields=tuple(
                      _TARGETS[m.split(" ", 1)[0][2:]] for m in missing))


def _type_problem(document: dict[str, Any]) -> str | None:
    """ilagent's typed parse: a known field with the wrong JSON type rejects the message."""
    if _TYPED_FIELDS.isdisjoint(document):  # the common case for mapped payloads
        return None
    for name in _STRING_FIELDS:
        value = document.get(name)
        if value is not None and not isinstance(value, str):
            return f"'{name}' must be a string"
    for name, required, optional in (("images", "src", ("href", "alt")),
                                     ("links", "href", ("text",))):
        items = document.get(name)
        if items is None:
            continue
        if not isinstance(items, list) or not all(
            isinstance(item, dict) and isinstance(item.get(required), str)
            and all(item.get(o) is None or isinstance(item[o], str) for o in optional)
            for item in items
        ):
            return f"'{name}' must be an array of objects with string members"
    return None


def parse_object(payload: bytes | None) -> dict[str, Any] | Dropped:
    """A message's JSON object, or why it is not one (``INVALID_JSON``, ``INVALID_MESSAGE``)."""
    try:
        document = parse_json(payload or b"")
    except ValueError as exc:
        return Dropped(DropReason.INVALID_JSON, f"not valid JSON: {_not_json(payload, exc)}")
    if not isinstance(document, dict):
        return Dropped(DropReason.INVALID_MESSAGE, "the message is not a JSON object")
    return document


def _not_json(payload: bytes | None, error: ValueError) -> str:
    """The parser's words, but for bytes that are not UTF-8, where they name lone surrogates
    and line 1 column 1 whatever the bytes: there, the first bad byte and where it is."""
    data = payload or b""
    try:
        data.decode()
    except UnicodeDecodeError as bad:
        return f"the bytes are not UTF-8 (byte {bad.start} is {data[bad.start:bad.end].hex(' ')})"
    return str(error)


def parse_json(data: bytes | str) -> Any:
    """Strict JSON, as ilagent's parser reads it: UTF-8 only, no NaN/Infinity, no numbers out
    of range, no lone surrogates, nesting at most 1,024 deep. Raises ``ValueError``."""
    return orjson.loads(data)


def raw_filter_reason(rules: MappingRules, payload: bytes | None) -> str | None:
    """Why the filter drops a message, told from its raw bytes alone; None when they cannot
    tell (then the parsed message decides). Never drops a message the filter would pass."""
    if rules.filter_key is None:
        return None
    needles = _needles(rules.filter_key, rules.filter_val)
    data = payload or b""
    if needles is None or b"\\" in data:  # an escape could spell the key or the value
        return None
    key, value, no_key, not_value = needles
    if key not in data:
        return no_key
    if value is not None and value not in data:
        return not_value
    return None


JOIN_LIMIT = 4 << 20  # bytes of payloads searched as one; a larger batch is searched in parts


def raw_survivors(rules: MappingRules, payloads: Sequence[bytes | None], *,
                  limit: int = JOIN_LIMIT) -> list[int] | None:
    """The indices, in order, of the payloads the filter's raw-bytes check cannot rule out;
    :func:`raw_filter_reason` drops every other one. None when the raw bytes rule nothing out.

    One search of the joined payloads for the needle (the filter's value, else its key) and
    one for a backslash (``limit`` bytes at a time), instead of two per payload; after a hit
    the search goes on at the next payload. A needle spanning two payloads makes a survivor too
    many (it is checked again on its own), never one too few: a payload holding the needle
    holds a hit of its own."""
    needles = (_needles(rules.filter_key, rules.filter_val)
               if rules.filter_key is not None else None)
    if needles is None:
        return None
    needle = needles[1] if needles[1] is not None else needles[0]
    data = cast("Sequence[bytes]", payloads)
    try:
        ends = list(accumulate(map(len, data)))
    except TypeError:  # a tombstone (None): no bytes
        data = [payload or b"" for payload in payloads]
        ends = list(accumulate(map(len, data)))
    picked: set[int] = set()
    start = 0
    while start < len(ends):
        base = ends[start - 1] if start else 0
        stop = max(bisect_right(ends, base + limit, start), start + 1)
        joined = b"".join(data[start:stop])
        for sought in (needle, b"\\"):
            at = joined.find(sought)
            while at >= 0:
                index = bisect_right(ends, base + at, start, stop)
                picked.add(index)
                at = joined.find(sought, ends[index] - base) if index + 1 < stop else -1
        start = stop
    return sorted(picked)


@functools.lru_cache(maxsize=16)
def _needles(key: str, value: str | None) -> tuple[bytes, bytes | None, str, str] | None:
    """The filter's key and value as JSON strings in UTF-8, as a message without escapes holds
    them, and the two reasons a message is dropped for (made once, not per message); None
    when JSON needs an escape for the key or the value (then no message is ruled out)."""
    key_needle = json_needle(key)
    value_needle = json_needle(value) if value is not None else None
    if key_needle is None or (value is not None and value_needle is None):
        return None
    return key_needle, value_needle, f"no '{key}' key", f"'{key}' is not {value!r}"


def json_needle(text: str) -> bytes | None:
    """``text`` as a JSON string in UTF-8, as a message without escapes holds it; None when
    JSON writes it with an escape (or cannot write it: a lone surrogate from a command line
    that was not UTF-8), so that the raw bytes cannot tell whether a message holds it."""
    try:
        needle = orjson.dumps(text)
    except orjson.JSONEncodeError:
        return None
    return None if b"\\" in needle else needle


def filter_reason(rules: MappingRules, document: dict[str, Any]) -> str | None:
    if rules.filter_key is None:
        return None
    if rules.filter_key not in document:
        return f"no '{rules.filter_key}' key"
    if rules.filter_val is None:
        return None
    value = document[rules.filter_key]
    if not isinstance(value, str):
        return f"'{rules.filter_key}' is not a string"
    if value != rules.filter_val:
        return f"'{rules.filter_key}' is not {rules.filter_val!r}"
    return None


def heartbeat_key(payload: bytes | None) -> str | None:
    """The heartbeat key of a heartbeat-topic message ``{"integrationKey"|"apiKey": …}``."""
    try:
        document = parse_json(payload or b"")
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    key = document.get("integrationKey")
    if key is None:
        key = document.get("apiKey")
    return key if isinstance(key, str) and key else None
