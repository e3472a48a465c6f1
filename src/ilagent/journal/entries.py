"""What the journal keeps of an event and how a row reads back (pure: no I/O).

The event loop only copies references (an :data:`Ended` tuple, a tuple per answer); turning
them into a row — reading the event body, masking the integration key — happens in the writer's
thread. Most events get one answer, kept as that tuple alone (:data:`Notes`); more become a
:class:`Trail`, which for an event retried through a long outage keeps the first
:data:`KEPT_FIRST` and the last :data:`KEPT_LAST` answers, and the count of all. Plain tuples,
few objects: the journal must cost little per event (``bench/bench_journal.py``).
"""

from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson

from ilagent.logs import mask, mask_key

KEPT_FIRST = 10  # answers kept from the start of an event's story
KEPT_LAST = 20  # and from its end
SUMMARY_CHARS = 200  # the summary is kept this long (enough to recognise the event)
DETAIL_CHARS = 200  # ilert's answer to a failed attempt (already masked by the client)
STALE_REASON = "stale"  # --max_event_age: not sent, a verdict of its own

# the verdicts a row can hold
DELIVERED, DEAD_LETTERED, STALE = "delivered", "dead_lettered", "stale"

# one answer: (unix time, HTTP status or None, outcome, reason, seconds, detail)
Answer = tuple[float, int | None, str, str, float, str]

COLUMNS = ("id, ended_at, received_at, source, topic, partition, position, route, "
           "integration_key, alert_key, event_type, summary, verdict, reason, answers, attempts")
Row = tuple[Any, ...]  # in the order of COLUMNS, without the id

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(slots=True)
class Trail:
    """The answers an event got so far (the engine's recorder keeps it on the job)."""

    first: list[Answer] = field(default_factory=list)
    last: deque[Answer] = field(default_factory=lambda: deque(maxlen=KEPT_LAST))
    count: int = 0

    def add(self, answer: Answer) -> None:
        """One more answer; past the first ones only the latest are kept."""
        self.count += 1
        if len(self.first) < KEPT_FIRST:
            self.first.append(answer)
        else:
            self.last.append(answer)

    def answers(self) -> list[Answer]:
        """The kept answers, oldest first."""
        return [*self.first, *self.last]


# what the journal keeps on a job: nothing yet, its one answer, or a Trail of several
Notes = Answer | Trail | None

# an event as it ended, referenced as it is (nothing parsed or masked yet): ended_at,
# received_at, source, position (topic, partition, offset) or None, route, integration key,
# body, notes, verdict, reason
Ended = tuple[float, float, str, tuple[str, int | None, int | None] | None, str, str, bytes,
              Notes, str, str]


def noted(notes: Notes, answer: Answer) -> Notes:
    """The notes of a job after one more answer."""
    if notes is None:
        return answer
    if isinstance(notes, Trail):
        notes.add(answer)
        return notes
    trail = Trail()
    trail.add(notes)
    trail.add(answer)
    return trail


def lookup(alert_key: str) -> str:
    """An alert key as ilert compares it (trimmed, case-insensitive): the index of the journal."""
    return alert_key.strip().lower()


def to_row(ended: Ended) -> Row:
    """The journal row of an event: the key masked, the body read for key, type and summary."""
    ended_at, received_at, source, spot, route, key, body, notes, verdict, reason = ended
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        event = None
    if not isinstance(event, dict):
        event = {}
    alert_key, kind, summary = (event.get("alertKey"), event.get("eventType"),
                                event.get("summary"))
    alert_key = alert_key if isinstance(alert_key, str) else None
    summary = mask(summary[:SUMMARY_CHARS], key) if isinstance(summary, str) else None
    topic, partition, position = spot or ("", None, None)
    if notes is None:
        answers, count = [], 0
    elif isinstance(notes, Trail):
        answers, count = notes.answers(), notes.count
    else:
        answers, count = [notes], 1
    attempts = orjson.dumps([
        {"at": round(at, 3), "status": status, "outcome": outcome, "reason": reason,
         "ms": round(seconds * 1000, 1),
         **({"detail": mask(detail[:DETAIL_CHARS], key)} if detail else {})}
        for at, status, outcome, reason, seconds, detail in answers]).decode()
    return (ended_at, received_at, source, topic, partition, position, route, mask_key(key),
            alert_key, kind if isinstance(kind, str) else None, summary, verdict, reason, count,
            attempts)


def iso(at: float) -> str:
    """Unix seconds as UTC ISO 8601 with milliseconds: ``2026-01-02T03:04:05.678Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}Z"


def where(source: str, topic: str, partition: int | None, position: int | None) -> str:
    """Where the message was, in words: ``kafka alarms[0]@17``, ``mqtt plant/a#5``,
    ``http queue#12``."""
    if source == "kafka":
        return f"kafka {topic}[{partition}]@{position}"
    if source == "mqtt":
        return f"mqtt {topic}#{position}"
    return f"{source} queue#{position}" + (f" (MQTT {topic})" if topic else "")


def as_json(row: tuple[Any, ...]) -> dict[str, Any]:
    """A row read back (with its id first), as ``trace --json`` and ``/trace`` show it."""
    (id_, ended_at, received_at, source, topic, partition, position, route, key, alert_key,
     kind, summary, verdict, reason, answers, attempts) = row
    if source == "kafka":
        spot: dict[str, Any] = {"topic": topic, "partition": partition, "offset": position}
    elif source == "mqtt":
        spot = {"topic": topic, "packetId": position}
    else:
        spot = {"queueId": position, **({"mqttTopic": topic} if topic else {})}
    return {
        "id": id_, "receivedAt": iso(received_at), "endedAt": iso(ended_at), "source": source,
        "position": spot, "where": where(source, topic, partition, position), "route": route,
        "integrationKey": key, "alertKey": alert_key, "eventType": kind, "summary": summary,
        "verdict": verdict, "reason": reason, "answers": answers,
        "attempts": [{**attempt, "at": iso(attempt["at"])} for attempt in orjson.loads(attempts)],
    }


def parse_since(text: str) -> float:
    """Seconds from ``1h``, ``30m``, ``2d``, ``1w``, ``90s`` or ``90``; ValueError otherwise."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration like 90s, 30m, 1h, 2d or 1w")
    return float(match.group(1)) * _UNITS[match.group(2)]
