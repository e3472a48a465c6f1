"""How a drill message is marked in each source, and how a source hands one over.

* Kafka: the header ``ilagent.drill: <drill id>``;
* MQTT 5: the user property ``ilagent.drill = <drill id>`` (MQTT 3.1.1 has no properties: MQTT
  drills need MQTT 5);
* HTTP intake: the request header ``X-Ilagent-Drill``; the intake stores the event as a row of
  kind ``drill``, and the drill id travels in the event's ``customDetails.ilagentDrill``.

A source that reads a marked message never treats it as a real alarm: it hands the message's
reading to the daemon's drills (:class:`DrillInbox`, the :class:`~ilagent.drills.desk.DrillDesk`)
and finishes it at once — committed, acknowledged, its row deleted — whatever becomes of its
drill. A daemon running no drills, or not this drill (another replica's, one from before a
restart), finishes it without sending anything (:func:`hand_over`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

from ilagent.mapping.reading import Reading
from ilagent.metrics import Metrics

logger = logging.getLogger(__name__)

MARK = "ilagent.drill"  # Kafka header, MQTT 5 user property
INTAKE_HEADER = "X-Ilagent-Drill"  # on a drill's POST to the daemon's own intake
DRILL_DETAIL = "ilagentDrill"  # customDetails field of every drill event: the drill id
ALERT_KEY_PREFIX = "ilagent-drill-"  # + the source: the alert key every drill resolves
INTAKE = "http"  # the HTTP intake's source label, as its other metrics have it


def alert_key(source: str) -> str:
    """The alert key a drill through ``source`` resolves (``ilagent-drill-kafka``)."""
    return ALERT_KEY_PREFIX + source


Headers = Sequence[tuple[str, str | bytes | None]] | Mapping[str, str | bytes | None] | None


def header_mark(headers: Headers) -> str | None:
    """The drill id of a Kafka message's (or MQTT user properties') ``ilagent.drill`` entry;
    None when it has none."""
    if not headers:
        return None
    for name, value in headers.items() if isinstance(headers, Mapping) else headers:
        if name == MARK:
            if isinstance(value, bytes):
                return value.decode("utf-8", "replace")
            return value or ""
    return None


class DrillInbox(Protocol):
    """Where sources hand drill messages over (the drill desk)."""

    def arrived(self, source: str, drill_id: str, reading: Reading) -> None:
        """A drill message came through ``source`` and its mapping read it as ``reading``."""

    def queued(self, path: str, text: str) -> None:
        """The spool worker loaded a drill row of the HTTP intake (its path and event)."""


def unknown(metrics: Metrics, source: str, drill_id: str) -> None:
    """Count (and log) a drill message no drill of this daemon waits for."""
    metrics.drill.unknown.labels(source).inc()
    logger.info("a %s drill message of drill %s, which this daemon does not run (another "
                "replica's, or from before a restart): finished without sending anything",
                source, drill_id or "(no id)")


def hand_over(inbox: DrillInbox | None, metrics: Metrics, source: str, drill_id: str,
              reading: Reading) -> None:
    """Give a drill message to the drills, or (none here) finish it as unknown."""
    if inbox is None:
        unknown(metrics, source, drill_id)
    else:
        inbox.arrived(source, drill_id, reading)


def hand_over_row(inbox: DrillInbox | None, metrics: Metrics, path: str, text: str) -> None:
    """Give an intake drill's row to the drills, or (none here) finish it as unknown."""
    if inbox is None:
        unknown(metrics, INTAKE, "")
    else:
        inbox.queued(path, text)
