"""What ilert would have seen of a run of messages, and how two configs differ on it (pure).

Each message read under a config comes to an :class:`Outcome`: the events it sends (one per
route that took it), the dead letters it makes, or why it is filtered. A :class:`Book` adds
the outcomes up per alert source (integration key) and plays ilert's alert state per alert
key, as ilert (and the sandbox) does:

* ``ALERT`` opens an alert when none with its key is open (``PENDING``), else is appended to
  the open one; an ``ALERT`` without an alert key opens a new alert every time;
* ``ACCEPT`` moves the open alert to ``ACCEPTED``, ``RESOLVE`` closes it (``RESOLVED``);
  ``COMMENT`` changes nothing;
* an ``ACCEPT`` or ``RESOLVE`` with no open alert of its key changes nothing in ilert either:
  it is counted as ``unmatched`` (its alert was opened before the range, or never).

The book starts empty: alerts open in ilert before the first message are not known to it.
:func:`differences` pairs the outcomes of the same messages under two configs.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ilagent.mapping.messages import Dropped
from ilagent.mapping.reading import Event, Fanout, Reading, Refused

PENDING, ACCEPTED, RESOLVED = "PENDING", "ACCEPTED", "RESOLVED"


@dataclass(frozen=True)
class Sent:
    """One event a message sends: the route that made it, its API path and its body."""

    route: str
    path: str
    event: Mapping[str, Any]

    @property
    def integration_key(self) -> str:
        return str(self.event.get("integrationKey", ""))

    @property
    def event_type(self) -> str:
        return str(self.event.get("eventType", "ALERT"))

    @property
    def alert_key(self) -> str | None:
        value = self.event.get("alertKey")
        return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Dead:
    """One dead letter a message makes: the route whose event it is ("" for the message)."""

    route: str
    reason: str
    detail: str


@dataclass(frozen=True)
class Outcome:
    """What one message comes to under one config; neither sent nor dead: filtered (why)."""

    sent: tuple[Sent, ...] = ()
    dead: tuple[Dead, ...] = ()
    filtered: str = ""

    def same_as(self, other: Outcome) -> bool:
        """True when ilert would see the same from both (same events, same dead letters)."""
        return self._identity() == other._identity()

    def _identity(self) -> tuple[Any, ...]:
        return (tuple((s.path, json.dumps(s.event, sort_keys=True, default=str))
                      for s in self.sent),
                tuple((d.route, d.reason) for d in self.dead),
                not self.sent and not self.dead)


def outcome_of(reading: Reading) -> Outcome:
    """The outcome of an event-topic message's reading (flags or routes)."""
    if isinstance(reading, Event):
        return Outcome(sent=(_sent(reading),))
    if isinstance(reading, Refused):
        return Outcome(dead=(Dead(reading.route, reading.reason, reading.detail),))
    if isinstance(reading, Fanout):
        if reading.filtered:
            return Outcome(filtered=reading.detail)
        return Outcome(sent=tuple(_sent(p) for p in reading.parts if isinstance(p, Event)),
                       dead=tuple(Dead(p.route, p.reason, p.detail) for p in reading.parts
                                  if isinstance(p, Refused)))
    if isinstance(reading, Dropped):
        return Outcome(filtered=reading.detail)
    raise TypeError(f"not an event-topic reading: {type(reading).__name__}")


def _sent(event: Event) -> Sent:
    return Sent(event.mapped.route, event.mapped.path, event.mapped.event)


@dataclass
class Alert:
    """One alert ilert would have opened: its key, its status at the end, its events."""

    alert_key: str | None
    status: str = PENDING
    events: int = 1


@dataclass
class Source:
    """One alert source (integration key): its events by type and its alerts."""

    events: Counter[str] = field(default_factory=Counter)
    alerts: list[Alert] = field(default_factory=list)  # every alert opened, in order
    accepted: int = 0
    resolved: int = 0
    unmatched: int = 0  # ACCEPT or RESOLVE without an open alert of its key
    _open: dict[str, Alert] = field(default_factory=dict, repr=False)

    def apply(self, event_type: str, alert_key: str | None) -> None:
        """One event as ilert takes it (see the module docstring)."""
        self.events[event_type] += 1
        alert = self._open.get(alert_key) if alert_key is not None else None
        if event_type == "ALERT":
            if alert is None:
                alert = Alert(alert_key)
                self.alerts.append(alert)
                if alert_key is not None:
                    self._open[alert_key] = alert
            else:
                alert.events += 1
        elif alert is None:
            if event_type in ("ACCEPT", "RESOLVE"):
                self.unmatched += 1
        else:
            alert.events += 1
            if event_type == "ACCEPT" and alert.status == PENDING:
                alert.status = ACCEPTED
                self.accepted += 1
            elif event_type == "RESOLVE":
                alert.status = RESOLVED
                self.resolved += 1
                del self._open[alert_key]  # type: ignore[arg-type]

    @property
    def still_open(self) -> list[Alert]:
        """The alerts open at the end (``PENDING`` or ``ACCEPTED``), in the order opened."""
        return [alert for alert in self.alerts if alert.status != RESOLVED]

    def summary(self) -> dict[str, Any]:
        """The numbers, as printed and compared."""
        return {"events": sum(self.events.values()), "byType": dict(sorted(self.events.items())),
                "opened": len(self.alerts), "accepted": self.accepted,
                "resolved": self.resolved, "stillOpen": len(self.still_open),
                "unmatched": self.unmatched}


@dataclass
class Book:
    """The outcomes of a run of messages under one config, added up."""

    messages: int = 0
    filtered: int = 0
    dead: Counter[str] = field(default_factory=Counter)  # by reason
    sources: dict[str, Source] = field(default_factory=dict)  # by integration key

    def add(self, outcome: Outcome) -> None:
        """Count one message's outcome and play its events."""
        self.messages += 1
        if not outcome.sent and not outcome.dead:
            self.filtered += 1
        for dead in outcome.dead:
            self.dead[dead.reason] += 1
        for sent in outcome.sent:
            source = self.sources.setdefault(sent.integration_key, Source())
            source.apply(sent.event_type, sent.alert_key)


def play(outcomes: Iterable[Outcome]) -> Book:
    """The book of a run of outcomes, in order."""
    book = Book()
    for outcome in outcomes:
        book.add(outcome)
    return book


@dataclass(frozen=True)
class Difference:
    """A message that comes to something else under the candidate than under the baseline."""

    where: Mapping[str, Any]
    baseline: Outcome
    candidate: Outcome


def differences(rows: Iterable[tuple[Mapping[str, Any], Outcome, Outcome]]
                ) -> list[Difference]:
    """Of ``(where, baseline, candidate)`` rows, those whose outcomes differ, in order."""
    return [Difference(where, before, after) for where, before, after in rows
            if not before.same_as(after)]


def source_changes(baseline: Book, candidate: Book) -> dict[str, dict[str, tuple[Any, Any]]]:
    """Per integration key, each summary number that differs: (baseline's, candidate's)."""
    changes: dict[str, dict[str, tuple[Any, Any]]] = {}
    empty = Source().summary()
    for key in dict.fromkeys([*baseline.sources, *candidate.sources]):
        before = baseline.sources[key].summary() if key in baseline.sources else empty
        after = candidate.sources[key].summary() if key in candidate.sources else empty
        changed = {name: (before[name], after[name]) for name in before
                   if before[name] != after[name]}
        if changed:
            changes[key] = changed
    return changes
