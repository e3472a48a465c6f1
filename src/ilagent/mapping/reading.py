"""One reading of a received message, whatever the source: what it asks for (pure).

A message of a topic of some :class:`~ilagent.mapping.topics.Kind` becomes a :class:`Ping`
(heartbeat topics), an :class:`Event` serialised once (event topics), a
:class:`~ilagent.mapping.policy.PolicyUpdate` (policy topics), a :class:`Refused` dead letter
with its reason, or the filtered :class:`~ilagent.mapping.messages.Dropped`. The Kafka and MQTT
sources both read through :func:`read`; each keeps only what is its own (offsets and commits;
packet ids and acknowledgements). An unexpected error is left to the caller, which dead-letters
that one message as ``internal_error``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ilagent.config import MappingRules, PolicyRules
from ilagent.errors import EventError
from ilagent.events import encode_event
from ilagent.mapping.messages import Dropped, Mapped, heartbeat_key, map_message, parse_object
from ilagent.mapping.policy import PolicyUpdate, map_policy
from ilagent.mapping.routes import Route, route_message
from ilagent.mapping.topics import Kind


@dataclass(frozen=True)
class Ping:
    """A heartbeat-topic message: ping this key."""

    key: str


@dataclass(frozen=True)
class Event:
    """An event-topic message: this event, serialised once."""

    mapped: Mapped
    body: bytes


@dataclass(frozen=True)
class Refused:
    """A message that is dead-lettered, and why."""

    reason: str
    detail: str
    route: str = ""  # the route whose event it is ("" for the message as a whole)


@dataclass(frozen=True)
class Fanout:
    """An event-topic message read through ``[[route]]`` s: the event (or refusal) of each
    route that took it, and the routes of its topic that passed it over. No part: filtered."""

    parts: tuple[Event | Refused, ...]
    passed: tuple[str, ...] = ()
    detail: str = ""  # why no route took it

    @property
    def filtered(self) -> bool:
        return not self.parts


Reading = Ping | Event | Fanout | PolicyUpdate | Refused | Dropped  # a Dropped one is filtered


def read(kind: Kind | None, payload: bytes | None, *, topic: str, rules: MappingRules,
         policy_rules: PolicyRules, source: str, message_key: bytes | None = None,
         routes: Sequence[Route] = ()) -> Reading:
    """What a message of ``kind`` asks for, with today's options (no side effects); with
    ``routes``, an event-topic message is read by them instead of the mapping flags."""
    if routes and kind is Kind.EVENT:
        return read_routed(routes, payload, topic=topic, source=source,
                           message_key=message_key, default_key=rules.event_key)
    if kind is Kind.HEARTBEAT:
        key = heartbeat_key(payload)
        return Ping(key) if key is not None else Refused(
            "invalid_heartbeat", 'expected {"integrationKey": "<key>"}')
    outcome: PolicyUpdate | Dropped
    if kind is Kind.POLICY:
        outcome = map_policy(policy_rules, rules, payload)
    elif kind is Kind.EVENT:
        mapped = map_message(rules, payload, topic=topic, message_key=message_key,
                             source=source)
        if isinstance(mapped, Mapped):
            return encoded(mapped)
        outcome = mapped
    else:
        return Refused("unrouted", f"{topic} matches no topic option")
    if isinstance(outcome, Dropped) and not outcome.filtered:
        return Refused(outcome.reason.value, outcome.detail)
    return outcome


def read_routed(routes: Sequence[Route], payload: bytes | None, *, topic: str, source: str,
                message_key: bytes | None = None, default_key: str | None = None,
                ) -> Fanout | Refused:
    """An event-topic message through the routes: a :class:`Fanout`, or a :class:`Refused`
    when it is no JSON object at all.

    When the raw bytes show that no route of the topic can take the message, it is filtered
    without being parsed — also when it is no JSON (as the flags' filter does, see
    :func:`~ilagent.mapping.messages.raw_filter_reason`)."""
    passed = _raw_passed(routes, payload or b"", topic=topic, source=source)
    if passed:
        return Fanout((), tuple(name for name, _why in passed),
                      "; ".join(why for _name, why in passed))
    document = parse_object(payload)
    if isinstance(document, Dropped):
        return Refused(document.reason.value, document.detail)
    routing = route_message(routes, document, topic=topic, source=source,
                            message_key=message_key, default_key=default_key)
    parts = tuple(encoded(outcome) if isinstance(outcome, Mapped)
                  else Refused(outcome.reason.value, outcome.detail, name)
                  for name, outcome in routing.taken)
    detail = "; ".join(why for _name, why in routing.passed) or f"no route reads {topic}"
    return Fanout(parts, tuple(name for name, _why in routing.passed), detail)


def _raw_passed(routes: Sequence[Route], data: bytes, *, topic: str, source: str
                ) -> list[tuple[str, str]] | None:
    """Each route of the topic with why its raw bytes rule it out; None (parse it) when one
    of them might take the message, or no route reads the topic."""
    if b"\\" in data:  # an escape could spell what the bytes seem to lack
        return None
    passed = []
    for route in routes:
        if route.takes_topic(topic, source):
            why = route.raw_refusal(data)
            if why is None:
                return None
            passed.append((route.name, why))
    return passed or None


def encoded(mapped: Mapped) -> Event | Refused:
    """A mapped event serialised once, or refused when JSON cannot carry it."""
    try:
        return Event(mapped, encode_event(mapped.event))
    except EventError as exc:
        return Refused("unserialisable", str(exc), mapped.route)
