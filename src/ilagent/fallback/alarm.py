"""When the local alarm is raised, repeated and cleared, and what each of its notices says.

:class:`AlarmState` is a pure state machine over times handed in by its caller (monotonic
seconds), so tests need no clock and no sleep:

* the circuit opens → nothing yet; open for ``after`` seconds → **alarm** (``ilert_unreachable``)
  on every channel, once;
* then a **reminder** every ``repeat`` seconds while it stays open, again on every channel — a
  channel that failed the alarm gets its next chance there;
* the circuit closes → an **all-clear** on every channel, only if an alarm was raised for this
  outage (a short outage says nothing at all). A channel that failed the all-clear is sent it
  again every ``repeat`` seconds while the circuit stays closed, until it goes through or a new
  alarm supersedes it;
* the circuit opens again → a new outage, a new alarm after ``after`` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

ALARM = "ilert_unreachable"
REMINDER = "reminder"
ALL_CLEAR = "all_clear"


@dataclass(frozen=True)
class Step:
    """A notice that is due: its kind, the channels it goes to, and the outage it is about."""

    kind: str
    channels: tuple[str, ...]
    opened_at: float  # monotonic time the circuit opened
    open_for: float  # seconds it has been open (an all-clear: how long it was)


class AlarmState:
    """The fallback's decisions for one daemon; ``now`` is monotonic seconds throughout."""

    def __init__(self, *, after: float, repeat: float, channels: tuple[str, ...]) -> None:
        self.after = after
        self.repeat = repeat
        self.channels = channels
        self.opened_at: float | None = None  # None while the circuit is closed
        self.raised = False  # an alarm was raised for the current outage
        self._next: float | None = None  # when the next alarm or reminder is due
        self._owed: set[str] = set()  # channels whose all-clear failed
        self._owed_step: Step | None = None
        self._retry_at: float | None = None

    def opened(self, now: float) -> None:
        """The circuit opened: the alarm is due ``after`` seconds from now."""
        if self.opened_at is None:
            self.opened_at, self.raised, self._next = now, False, now + self.after

    def closed(self, now: float) -> list[Step]:
        """The circuit closed: the all-clear for every channel if an alarm was raised."""
        if self.opened_at is None:
            return []
        opened_at, raised = self.opened_at, self.raised
        self.opened_at, self.raised, self._next = None, False, None
        if not raised:
            return []
        return [Step(ALL_CLEAR, self.channels, opened_at, now - opened_at)]

    def due(self, now: float) -> list[Step]:
        """The notices due at ``now`` (at most one alarm or reminder, or one all-clear retry)."""
        if self.opened_at is not None:
            if self._next is None or now < self._next:
                return []
            kind = REMINDER if self.raised else ALARM
            if not self.raised:
                self.raised = True
                self._owed.clear()  # the new alarm supersedes an all-clear still owed
                self._owed_step = self._retry_at = None
            self._next = now + self.repeat  # counted from now: a late tick makes no burst
            return [Step(kind, self.channels, self.opened_at, now - self.opened_at)]
        if self._owed and self._retry_at is not None and now >= self._retry_at:
            assert self._owed_step is not None
            step = Step(ALL_CLEAR, tuple(c for c in self.channels if c in self._owed),
                        self._owed_step.opened_at, self._owed_step.open_for)
            self._owed.clear()
            self._owed_step = self._retry_at = None
            return [step]
        return []

    def failed(self, step: Step, channel: str, now: float) -> None:
        """``channel`` could not send ``step``: an all-clear is owed to it (an alarm or a reminder
        is simply sent again with the next reminder)."""
        if step.kind != ALL_CLEAR or (self.opened_at is not None and self.raised):
            return
        self._owed.add(channel)
        self._owed_step = step
        if self._retry_at is None:
            self._retry_at = now + self.repeat

    def next_due(self) -> float | None:
        """When :meth:`due` has something next (None: only a change of the circuit will)."""
        if self.opened_at is not None:
            return self._next
        return self._retry_at if self._owed else None


@dataclass(frozen=True)
class Notice:
    """One message of the fallback, the same on every channel (times are wall-clock seconds)."""

    kind: str
    since: float  # when the circuit opened
    at: float  # when this notice was made
    open_for: float
    backlog: int  # events received and not yet delivered
    last_error: str  # ilert's last transient failure, "" when none is known
    ilert_url: str
    host: str  # this machine's name, as the site knows it
    version: str  # ilagent's

    def body(self) -> dict[str, Any]:
        """The JSON body of the webhook and the MQTT message (documented in docs/fallback.md)."""
        return {"status": self.kind, "daemon": "ilagent", "version": self.version,
                "host": self.host, "since": _iso(self.since),
                "at": _iso(self.at), "openFor": round(self.open_for), "backlog": self.backlog,
                "lastError": self.last_error, "ilertUrl": self.ilert_url}

    def subject(self) -> str:
        """One line saying what happened (a mail's subject)."""
        host, took = self.host, duration(self.open_for)
        waiting = f"{self.backlog} event{'' if self.backlog == 1 else 's'}"
        if self.kind == ALARM:
            return f"ilagent on {host}: ilert unreachable for {took}, {waiting} waiting"
        if self.kind == REMINDER:
            return f"ilagent on {host}: ilert still unreachable after {took}, {waiting} waiting"
        return f"ilagent on {host}: ilert reachable again after {took}, {waiting} to deliver"

    def text(self) -> str:
        """A mail's body: what it means, what happens next, and the JSON body's fields."""
        if self.kind == ALL_CLEAR:
            meaning = ("ilert answers again. The events that waited are being delivered now, "
                       "in order; nothing was lost.")
        else:
            meaning = ("ilagent cannot reach ilert, so alerts do not reach the on-call people "
                       "through it. Events are kept and will be delivered when ilert answers "
                       "again. Check the network link to ilert and handle urgent alarms "
                       "locally meanwhile.")
        fields = "\n".join(f"{name}: {value}" for name, value in self.body().items())
        return f"{self.subject()}\n\n{meaning}\n\n{fields}\n"


def duration(seconds: float) -> str:
    """``45 s``, ``5 min``, ``2 h 5 min``: a length of time as a person reads it."""
    whole = round(seconds)
    if whole < 120:
        return f"{whole} s"
    minutes = whole // 60
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
