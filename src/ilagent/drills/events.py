"""What a drill sends to ilert: a RESOLVE for the drill alert key on each integration key the
user's mapping produced (pure: no I/O).

A drill never pages anyone: whatever event the mapping made of the sample message, what goes
to ilert is ``{"integrationKey": <the mapped key>, "eventType": "RESOLVE", "alertKey":
"ilagent-drill-<source>", "summary": …, "customDetails": {"ilagentDrill": <id>, "source", "route"}}``
on the mapped event's own path (``/v1/events/kafka/<key>``, …). It proves the key and the path;
resolving an alert that is not open changes nothing in ilert. One event per route that took the
message: all of them must arrive.

The HTTP intake takes ilert events, not raw messages: its drill posts a RESOLVE on the sample's
own ``integrationKey`` (or ``apiKey``) — :func:`intake_event` — and reads it back from the spool
with :func:`queued_reading`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ilagent.drills.marks import DRILL_DETAIL, alert_key
from ilagent.events import encode_event
from ilagent.mapping.messages import Dropped, Mapped
from ilagent.mapping.reading import Event, Fanout, Ping, Reading, Refused

SUMMARY = "ilagent fire drill ({source}): resolves nothing, proves the path"


@dataclass(frozen=True)
class DrillEvent:
    """One event a drill sends."""

    integration_key: str
    path: str
    body: bytes
    route: str
    alert_key: str


def drill_events(reading: Reading, *, source: str, drill_id: str
                 ) -> tuple[tuple[DrillEvent, ...], str]:
    """The drill events of a drill message's reading and what the mapping made of it; no
    events (and why) when the mapping filtered or dead-lettered it."""
    made: list[Mapped] = []
    if isinstance(reading, Event):
        made = [reading.mapped]
    elif isinstance(reading, Fanout):
        refused = [part for part in reading.parts if isinstance(part, Refused)]
        if refused:
            return (), (f"route {refused[0].route} dead-letters it: {refused[0].reason} "
                        f"{refused[0].detail}").strip()
        if reading.filtered:
            return (), f"filtered: {reading.detail}"
        made = [part.mapped for part in reading.parts if isinstance(part, Event)]
    elif isinstance(reading, Dropped):
        return (), f"filtered: {reading.detail}"
    elif isinstance(reading, Refused):
        return (), f"dead-lettered: {reading.reason} {reading.detail}".strip()
    elif isinstance(reading, Ping):
        return (), "its topic is a heartbeat topic: no event is made of it"
    else:
        return (), "its topic is a policy topic: no event is made of it"
    events = tuple(_resolve(mapped, source=source, drill_id=drill_id) for mapped in made)
    routes = sorted({mapped.route for mapped in made if mapped.route})
    what = f"{len(events)} event{'s' if len(events) != 1 else ''}"
    return events, what + (f" (route {', '.join(routes)})" if routes else "")


def _resolve(mapped: Mapped, *, source: str, drill_id: str) -> DrillEvent:
    key = alert_key(source)
    event = resolve_event(mapped.integration_key, source=source, drill_id=drill_id,
                          route=mapped.route)
    return DrillEvent(integration_key=mapped.integration_key, path=mapped.path,
                      body=encode_event(event), route=mapped.route, alert_key=key)


def resolve_event(integration_key: str, *, source: str, drill_id: str,
                  route: str = "") -> dict[str, Any]:
    """The RESOLVE a drill through ``source`` sends."""
    details: dict[str, Any] = {DRILL_DETAIL: drill_id, "source": source}
    if route:
        details["route"] = route
    return {"integrationKey": integration_key, "eventType": "RESOLVE",
            "alertKey": alert_key(source), "summary": SUMMARY.format(source=source),
            "customDetails": details}


def sample_key(sample: bytes) -> str | None:
    """The integration key of a sample that is an ilert event (``integrationKey``, else
    ``apiKey``); None for anything else."""
    try:
        document = json.loads(sample)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    for name in ("integrationKey", "apiKey"):
        value = document.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def intake_event(sample: bytes, *, source: str, drill_id: str) -> dict[str, Any] | None:
    """The event an intake drill posts: a RESOLVE on the sample's own key (None: it has none)."""
    key = sample_key(sample)
    return None if key is None else resolve_event(key, source=source, drill_id=drill_id)


def queued_reading(path: str, text: str) -> tuple[str, Reading]:
    """The drill id and reading of an intake drill's row (an event the intake validated)."""
    try:
        event = json.loads(text)
    except ValueError:
        return "", Refused("corrupt", "the drill row is not JSON")
    details = event.get("customDetails") if isinstance(event, dict) else None
    drill_id = details.get(DRILL_DETAIL) if isinstance(details, dict) else None
    if not isinstance(drill_id, str) or not isinstance(event.get("integrationKey"), str):
        return "", Refused("corrupt", "the drill row names no drill")
    return drill_id, Event(Mapped(event=event, path=path, route=""), text.encode())
