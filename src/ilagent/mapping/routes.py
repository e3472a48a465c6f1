"""Routes: several mappings in one agent, each with its sources, its match and its templates (pure).

A ``[[route]]`` table of the TOML config (:func:`~ilagent.mapping.route_tables.load_routes`) names the topics it takes
(``kafka_topics``: names or ``^`` regexes; ``mqtt_topics``: MQTT filters; neither: every event
topic), what it takes of them (``match``: every condition must hold), where its events go
(``integration_key``, or ``integration_key_field``, a dot path; else the message's own
``integrationKey``/``apiKey``, else ``--event_key``) and how each ilert field is made
(templates, value maps, picked details). A message yields one event per route that takes it
(:func:`route_message`); one no route takes is filtered. Without any ``[[route]]`` the mapping
flags are the one route, named ``default``, through :mod:`ilagent.mapping.messages`, exactly as
before.

Match conditions compare JSON values as they are (``equals = 3`` takes ``3``, not ``"3"``),
unlike the ``--filter_val`` flag, which compares strings only::

    match = [{ path = "type", equals = "ALARM" }, { path = "state", in = ["SET", "CLR"] },
             { path = "ack", exists = false }]

Fields the route does not map come from the message's own ilert fields when they have the
right type, else the defaults of the flags (``ALERT``; ``New alert from <topic>``). Texts are
cut to ilert-friendly lengths (:data:`LIMITS`; the summary and details end with ``…``); an
``alertKey`` beyond its limit keeps its start and a hash of the whole, so two long keys never
merge into one alert.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ilagent.events import EVENT_TYPES, PRIORITIES
from ilagent.mapping.messages import (
    MISSING,
    Dropped,
    DropReason,
    Mapped,
    decode_text,
    event_path,
    lookup,
)
from ilagent.mapping.templates import RenderError, Scope, Template, scope
from ilagent.mapping.topics import TopicMatcher

__all__ = ["LIMITS", "Route", "Routing", "route_message"]

# not published by ilert; long enough for any readable alert, short enough for a phone
LIMITS = {"summary": 255, "details": 16_384, "alertKey": 255, "label": 255, "text": 1_024}
TEXT_FIELDS = {"summary": "summary", "details": "details", "alert_key": "alertKey",
                "routing_key": "routingKey"}
LIST_FIELDS = {"links": ("href", ("href", "text")), "images": ("src", ("src", "href", "alt")),
                "comments": ("content", ("creator", "content"))}


@dataclass(frozen=True)
class Condition:
    """One ``match`` condition on a dot path."""

    path: str
    test: Callable[[Any], bool]
    text: str  # how it reads, for "why no route took it"
    # what the bytes of a message it holds for contain, as JSON strings: the path's last key
    # and, when given, one of the values; None when raw bytes cannot tell (numbers, absence)
    needles: tuple[bytes, tuple[bytes, ...]] | None = None

    def holds(self, document: Mapping[str, Any]) -> bool:
        return self.test(lookup(document, self.path))

    def ruled_out(self, data: bytes) -> bool:
        """True when bytes without escapes cannot hold a message this condition holds for."""
        if self.needles is None:
            return False
        key, values = self.needles
        return key not in data or (bool(values) and not any(v in data for v in values))


@dataclass(frozen=True)
class ValueMap:
    """``{ path = "state", alert = "SET", resolve = ["CLR", "OK"] }``: a raw value → a value."""

    path: str
    values: Mapping[Any, str]
    default: str | None


@dataclass(frozen=True)
class Route:
    """A parsed ``[[route]]``; see the module docstring."""

    name: str
    kafka: TopicMatcher | None = None
    mqtt: TopicMatcher | None = None
    kafka_topics: tuple[str, ...] = ()
    mqtt_topics: tuple[str, ...] = ()
    conditions: tuple[Condition, ...] = ()
    integration_key: str | None = field(default=None, repr=False)
    key_field: str | None = None
    event_type: ValueMap | Template | None = None
    priority: ValueMap | Template | None = None
    texts: Mapping[str, Template] = field(default_factory=dict)  # ilert field → template
    labels: Mapping[str, Template] = field(default_factory=dict)
    lists: Mapping[str, tuple[Mapping[str, Template], ...]] = field(default_factory=dict)
    custom_details: Any = None  # None, "payload", ("path", p) or ("pick", paths)

    def takes_topic(self, topic: str, source: str) -> bool:
        """True when the route reads this topic of this source."""
        if self.kafka is None and self.mqtt is None:
            return True
        matcher = self.kafka if source == "kafka" else self.mqtt
        return matcher is not None and matcher(topic)

    def refusal(self, document: Mapping[str, Any]) -> str | None:
        """Why the route does not take the message, or None when it does."""
        for condition in self.conditions:
            if not condition.holds(document):
                return f"{self.name}: not {condition.text}"
        return None

    def raw_refusal(self, data: bytes) -> str | None:
        """Why the route does not take a message, told from its raw bytes (which must hold no
        escape) alone; None when they cannot tell. Never refuses what it would take."""
        for condition in self.conditions:
            if condition.ruled_out(data):
                return f"{self.name}: not {condition.text}"
        return None


@dataclass(frozen=True)
class Routing:
    """What the routes made of a message: each taking route's event (or why it has none), and
    the routes of its topic that did not take it, with why."""

    taken: tuple[tuple[str, Mapped | Dropped], ...]
    passed: tuple[tuple[str, str], ...]


# ---- mapping one message ---------------------------------------------------------------------

def route_message(routes: Sequence[Route], document: Mapping[str, Any], *, topic: str,
                  source: str, message_key: bytes | None = None,
                  default_key: str | None = None) -> Routing:
    """The events of a parsed message, one per route that takes it (no I/O, never raises for
    any message content)."""
    taken: list[tuple[str, Mapped | Dropped]] = []
    passed: list[tuple[str, str]] = []
    context: dict[str, Any] | None = None
    for route in routes:
        if not route.takes_topic(topic, source):
            continue
        refusal = route.refusal(document)
        if refusal is not None:
            passed.append((route.name, refusal))
            continue
        if context is None:
            context = {"payload": document, "topic": topic, "source": source,
                       "message_key": decode_text(message_key)}
        context["route"] = route.name
        taken.append((route.name, _event(route, document, context, default_key)))
    return Routing(tuple(taken), tuple(passed))


class _Build:
    """The notes of one event being built: missing fields, template errors, warnings."""

    def __init__(self, route: Route, document: Mapping[str, Any],
                 context: Mapping[str, Any]) -> None:
        self.route = route
        self.document = document
        self.context = context
        self._scope: Scope | None = None  # made at the first template that needs rendering
        self.missing: list[str] = []
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def text(self, name: str, template: Template) -> str:
        try:
            if self._scope is None and not template.plain:
                self._scope = scope(self.context)
            rendered = template.render(self._scope or self.context)
        except RenderError as exc:
            self.errors.append(name)
            self.warnings.append(f"route {self.route.name}: {name} template failed ({exc}); "
                                 "sent with a fallback text")
            own = self.document.get(name)
            return own if isinstance(own, str) else self.route.name
        if rendered.missing or not rendered.strip():
            self.missing.append(name)
        return str(rendered)

    def mapped(self, name: str, rule: ValueMap | Template) -> Any:
        if isinstance(rule, Template):
            return self.text(name, rule).strip()
        raw = lookup(self.document, rule.path)
        if raw is MISSING:
            self.missing.append(name)
            return rule.default
        key = raw if isinstance(raw, (str, int, float, bool)) else None
        if key in rule.values:
            return rule.values[key]
        return rule.default if rule.default is not None else raw


def _event(route: Route, document: Mapping[str, Any], context: Mapping[str, Any],
           default_key: str | None) -> Mapped | Dropped:
    build = _Build(route, document, context)
    event: dict[str, Any] = {}
    key: Any = route.integration_key
    if key is None and route.key_field is not None:
        key = lookup(document, route.key_field)
        if not isinstance(key, str) or not key:
            build.missing.append("integrationKey")
            key = None
    if key is None:
        key = _own(document, "integrationKey") or _own(document, "apiKey") or default_key
    event["integrationKey"] = key or ""
    event_type = (build.mapped("eventType", route.event_type) if route.event_type is not None
                  else None) or _own(document, "eventType") or "ALERT"
    event["eventType"] = event_type
    for name, template in route.texts.items():
        value = build.text(name, template)
        if value.strip():
            event[name] = _fit(name, value)
    for name in ("summary", "details", "alertKey", "routingKey"):
        if name not in route.texts and _own(document, name):
            event[name] = _fit(name, document[name])
    if "summary" not in event:
        event["summary"] = f"New alert from {topic_of(context)}" if event_type == "ALERT" else ""
    if route.priority is not None:
        priority = build.mapped("priority", route.priority)
        if priority not in (None, ""):
            event["priority"] = priority
    elif _own(document, "priority"):
        event["priority"] = document["priority"]
    labels = {name: _fit("label", build.text(f"labels.{name}", template))
              for name, template in route.labels.items()}
    if any(labels.values()):
        event["labels"] = {name: value for name, value in labels.items() if value}
    for name, items in route.lists.items():
        built = [{part: _fit("text", build.text(f"{name}.{part}", template))
                  for part, template in item.items()} for item in items]
        required = LIST_FIELDS[name][0]
        kept = [{k: v for k, v in item.items() if v} for item in built if item.get(required)]
        if kept:
            event[name] = kept
    event["customDetails"] = _custom_details(route, document, context, build)
    warnings = tuple(build.warnings)
    if not event["integrationKey"]:
        return Dropped(DropReason.NO_KEY, f"route {route.name}: no integration key "
                       "(integration_key, integration_key_field, the message's, --event_key)",
                       warnings)
    if event_type not in EVENT_TYPES:
        return Dropped(DropReason.INVALID_EVENT_TYPE, f"route {route.name}: eventType "
                       f"{event_type!r} is not one of {', '.join(EVENT_TYPES)}", warnings)
    if "priority" in event and event["priority"] not in PRIORITIES:
        return Dropped(DropReason.INVALID_PRIORITY, f"route {route.name}: priority "
                       f"{event['priority']!r} is not HIGH or LOW", warnings)
    return Mapped(event, event_path(str(context["source"]), event["integrationKey"]), warnings,
                  route=route.name, missing_fields=tuple(dict.fromkeys(build.missing)),
                  template_errors=tuple(build.errors))


def topic_of(context: Mapping[str, Any]) -> str:
    return str(context["topic"])


def _own(document: Mapping[str, Any], name: str) -> str | None:
    """The message's own string field ``name`` (an ilert event field), if it has one."""
    value = document.get(name)
    return value if isinstance(value, str) and value else None


def _fit(name: str, value: str) -> str:
    """A text cut to its field's limit: an ellipsis, or for an alert key a hash of the whole."""
    limit = LIMITS.get(name, LIMITS["text"])
    if len(value) <= limit:
        return value
    if name == "alertKey":
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        return f"{value[:limit - 17]}~{digest}"
    return value[:limit - 1] + "…"


def _custom_details(route: Route, document: Mapping[str, Any], context: Mapping[str, Any],
                    build: _Build) -> Any:
    how = route.custom_details
    if how is None:
        own = document.get("customDetails")
        if isinstance(own, dict):
            return own
        if context["source"] == "mqtt":
            return {"topic": context["topic"]}
        return {"messageKey": context["message_key"], "topic": context["topic"]}
    if how == "payload":
        return dict(document)
    kind, paths = how
    if kind == "path":
        value = lookup(document, paths)
        if value is MISSING:
            build.missing.append("customDetails")
            return {}
        return value if isinstance(value, dict) else {paths: value}
    picked = {}
    for path in paths:
        value = lookup(document, path)
        if value is MISSING:
            build.missing.append("customDetails")
        else:
            picked[path] = value
    return picked

