"""The ilert event model: validation of event bodies as ilert's events API checks them (pure).

One validator serves the sandbox (which must answer like ilert), the daemon's HTTP intake and
the ``event`` command, so they can never disagree about what a valid event is. (Kafka messages
follow ilagent 0.9's mapping rules in :mod:`ilagent.mapping.messages` instead, which check only the
fields ilagent reads.)
``null`` counts as absent for every optional field, as ilert treats it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ilagent.errors import EventError

__all__ = [
    "EVENT_TYPES",
    "PRIORITIES",
    "EventError",
    "encode_event",
    "validate_event",
    "with_path_key",
]

EVENT_TYPES = ("ALERT", "ACCEPT", "RESOLVE", "COMMENT")
PRIORITIES = ("HIGH", "LOW")
OPTIONAL_STRINGS = ("details", "alertKey", "routingKey")


def _missing(field: str) -> EventError:
    return EventError(field, "MISSING_FIELD", f"'{field}' is required")


def _invalid(field: str, what: str) -> EventError:
    return EventError(field, "INVALID_FIELD", f"'{field}' {what}")


def encode_event(event: Mapping[str, Any]) -> bytes:
    """The event as the JSON bytes sent to ilert, serialised once where it enters.

    Raises :class:`EventError` (``INVALID_FIELD``) naming the first top-level field that JSON
    cannot carry on: integers beyond 64 bits, strings with lone surrogates, nesting deeper than
    the encoder allows. Values a reader accepted can still be unsendable; this is where that
    is found out, before the event is promised to anyone.
    """
    try:
        # a copy of exactly its length: orjson's own result keeps a 4 KiB buffer, and a Kafka
        # backlog holds thousands of bodies (B4 peak RSS 164 MiB instead of 92)
        return bytes(memoryview(orjson.dumps(event)))
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        for name, value in event.items():
            try:
                orjson.dumps(value)
            except TypeError as field_exc:
                raise _invalid(name, f"cannot be sent to ilert: {field_exc}") from None
        raise EventError("body", "INVALID_FIELD",
                         f"the event cannot be sent to ilert: {exc}") from None


def with_path_key(body: object, path_key: str | None) -> object:
    """The body, with the URL path's key as ``integrationKey`` when the body names no key."""
    if path_key is None or not isinstance(body, Mapping):
        return body
    if body.get("integrationKey") is None and body.get("apiKey") is None:
        return {**body, "integrationKey": path_key}
    return body


def validate_event(body: object) -> dict[str, Any]:
    """Check an event body and return it normalised: ``apiKey`` renamed, ``null`` fields dropped.

    Raises :class:`EventError` naming the first offending field.
    """
    if not isinstance(body, Mapping):
        raise EventError("body", "INVALID_BODY", "the body must be a JSON object")
    event = {k: v for k, v in body.items() if v is not None}
    key = event.pop("integrationKey", None)
    legacy = event.pop("apiKey", None)
    key = key if key is not None else legacy
    if key is None:
        raise _missing("integrationKey")
    if not isinstance(key, str) or not key.strip():
        raise _invalid("integrationKey", "must be a non-empty string")
    event_type = event.get("eventType")
    if event_type is None:
        raise _missing("eventType")
    if event_type not in EVENT_TYPES:
        raise _invalid("eventType", f"must be one of {', '.join(EVENT_TYPES)}")
    summary = event.get("summary")
    if summary is not None and not isinstance(summary, str):
        raise _invalid("summary", "must be a string")
    if event_type == "ALERT" and not summary:
        raise _missing("summary")
    for name in OPTIONAL_STRINGS:
        if name in event and not isinstance(event[name], str):
            raise _invalid(name, "must be a string")
    if "priority" in event and event["priority"] not in PRIORITIES:
        raise _invalid("priority", "must be HIGH or LOW")
    severity = event.get("severity")
    if severity is not None and (
        isinstance(severity, bool) or not isinstance(severity, int) or not 1 <= severity <= 5
    ):
        raise _invalid("severity", "must be an integer from 1 to 5")
    _check_items(event, "images", required="src", optional=("href", "alt"))
    _check_items(event, "links", required="href", optional=("text",))
    _check_items(event, "comments", required="content", optional=("creator",))
    _check_services(event)
    labels = event.get("labels")
    if labels is not None and not (
        isinstance(labels, Mapping)
        and all(isinstance(v, str) for v in labels.values())
    ):
        raise _invalid("labels", "must be an object of string values")
    if "customDetails" in event and not isinstance(event["customDetails"], Mapping):
        raise _invalid("customDetails", "must be a JSON object")
    return {"integrationKey": key, **event}


def _check_items(
    event: dict[str, Any], field: str, *, required: str, optional: tuple[str, ...]
) -> None:
    items = event.get(field)
    if items is None:
        return
    if not isinstance(items, list):
        raise _invalid(field, "must be an array")
    for index, item in enumerate(items):
        where = f"{field}[{index}]"
        if not isinstance(item, Mapping):
            raise _invalid(where, "must be an object")
        if not isinstance(item.get(required), str):
            raise _invalid(f"{where}.{required}", "must be a string")
        for name in optional:
            if item.get(name) is not None and not isinstance(item[name], str):
                raise _invalid(f"{where}.{name}", "must be a string")


def _check_services(event: dict[str, Any]) -> None:
    services = event.get("services")
    if services is None:
        return
    if not isinstance(services, list):
        raise _invalid("services", "must be an array")
    for index, item in enumerate(services):
        where = f"services[{index}]"
        if not isinstance(item, Mapping):
            raise _invalid(where, "must be an object")
        ident, alias = item.get("id"), item.get("alias")
        if ident is not None and (isinstance(ident, bool) or not isinstance(ident, int)):
            raise _invalid(f"{where}.id", "must be an integer")
        if alias is not None and not isinstance(alias, str):
            raise _invalid(f"{where}.alias", "must be a string")
        if ident is None and alias is None:
            raise _invalid(where, "needs an 'alias' or an 'id'")
