"""``ilagent --config FILE map``: the ``[[route]]`` s of the config file over sample messages.

Each sample goes through the routes as the daemon reads an event-topic message
(:func:`ilagent.mapping.routes.route_message`), and one JSON object per sample says what became
of it: ``"result": "events"`` with the event of each route that took it (its URL, the event,
and the fields the message did not have), the routes that refused it an event (dead letters
in the daemon) and those that passed it over, with why; or ``"result": "dropped"`` when no
route took it (``no_route``) or it is no JSON object. ``--check`` exits 1 when a sample is
taken by no route, a route refuses it an event, or an event lacks a mapped field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from ilagent.mapping.messages import Dropped, Mapped, parse_object

if TYPE_CHECKING:
    from ilagent.mapping.routes import Route

EXIT_OK = 0
EXIT_DROPPED = 1


@dataclass(frozen=True)
class Sample:
    """One message to map: its payload, the topic and Kafka message key it is taken to come
    with, and ``where`` it came from, printed first (``{"line": n}`` or
    ``{"topic": …, "partition": …, "offset": …}``)."""

    payload: bytes
    topic: str
    message_key: bytes | None
    where: dict[str, Any]


def route_samples(routes: Sequence[Route], samples: Iterable[Sample], *, source: str,
                  default_key: str | None, api_url: str, check: bool, out: TextIO) -> int:
    """Run every route over each sample and write one JSON result per sample to ``out``."""
    from ilagent.mapping.reading import Event, Refused, encoded  # Jinja2: only with routes
    from ilagent.mapping.routes import route_message

    failed = False
    for sample in samples:
        report: dict[str, Any] = dict(sample.where)
        document = parse_object(sample.payload)
        if isinstance(document, Dropped):
            failed = True
            report.update(result="dropped", reason=document.reason.value,
                          detail=document.detail)
            out.write(json.dumps(report, ensure_ascii=False) + "\n")
            continue
        routing = route_message(routes, document, topic=sample.topic, source=source,
                                message_key=sample.message_key, default_key=default_key)
        events, refused = [], []
        for name, outcome in routing.taken:
            reading = encoded(outcome) if isinstance(outcome, Mapped) else Refused(
                outcome.reason.value, outcome.detail, name)
            if isinstance(reading, Event):
                events.append(_event(name, reading.mapped, api_url))
            else:
                refused.append({"route": name, "reason": reading.reason,
                                "detail": reading.detail})
        passed = [{"route": name, "why": why} for name, why in routing.passed]
        if events:
            report.update(result="events", events=events)
        else:
            report.update(result="dropped", reason="no_route" if not refused else "refused",
                          detail="no route takes it" if not refused
                          else "every route that takes it refuses it an event")
        if refused:
            report["refused"] = refused
        if passed:
            report["passedOver"] = passed
        failed = failed or not events or bool(refused) or any("missing" in e for e in events)
        out.write(json.dumps(report, ensure_ascii=False) + "\n")
    return EXIT_DROPPED if check and failed else EXIT_OK


def _event(route: str, mapped: Mapped, api_url: str) -> dict[str, Any]:
    shown: dict[str, Any] = {"route": route, "url": api_url + mapped.path, "event": mapped.event}
    if mapped.missing_fields:
        shown["missing"] = list(mapped.missing_fields)
    if mapped.warnings:
        shown["warnings"] = list(mapped.warnings)
    return shown

