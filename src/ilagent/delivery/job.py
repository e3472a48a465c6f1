"""What the delivery engine runs: a :class:`Job`, who owns it, and how it ended.

Its own module so that the engine and the sender (which sends one attempt of a job) both
import it and neither imports the other.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from ilagent.ilert import Outcome, Result
from ilagent.logs import mask_key
from ilagent.mapping.messages import FLAG_ROUTE
from ilagent.mapping.policy import PolicyUpdate

# an event that grew older than its ``expires_at`` (``--max_event_age``) while it waited to go
EXPIRED = Result(Outcome.REJECTED, None, "", reason="stale")
STALE = EXPIRED.reason  # the dead-letter reason of an event older than --max_event_age


class Verdict(enum.Enum):
    """How a job ended."""

    DELIVERED = "delivered"
    DEAD_LETTER = "dead_letter"
    SUPERSEDED = "superseded"  # a newer heartbeat ping of the same key made it needless


class JobOwner(Protocol):
    """Who submitted a job and must hear how it ended (the Kafka bridge, the spool worker)."""

    def cancelled(self, job: Job) -> bool:
        """True when the job must not be sent any more (its partition was revoked)."""

    async def finished(self, job: Job, verdict: Verdict, result: Result | None,
                       reason: str) -> None:
        """The job ended; for a dead letter this must store it before returning."""

    def abandoned(self, job: Job) -> None:
        """The job was withdrawn unfinished; it will be delivered again from its source."""

    def attempted(self, job: Job, result: Result, delay: float) -> None:
        """An attempt failed and will be retried after ``delay`` s (a chance to persist it)."""


class Position(NamedTuple):
    """Where a job's message is, for the journal: a Kafka topic, partition and offset; an
    MQTT topic and packet id (``offset``); a spool row, the intake's request id (``offset``)."""

    topic: str
    partition: int | None
    offset: int | None


class Recorder(Protocol):
    """Who keeps the story of each event (the journal): told of every answer ilert gave to
    it and of how it ended. Both are called on the event loop and must return at once."""

    def answered(self, job: Job, result: Result, seconds: float) -> None:
        """ilert answered an attempt of ``job`` after ``seconds``."""

    def ended(self, job: Job, verdict: Verdict, result: Result | None, reason: str) -> None:
        """``job`` ended: delivered, or dead-lettered for ``reason``."""


@dataclass(eq=False)
class Parts:
    """The events one message fanned out to (one per route that took it): the message ends
    when the last of them did — finished, or given back when any of them was withdrawn."""

    left: int
    withdrawn: bool = False

    def end(self, *, finished: bool) -> bool:
        """One of them ended; True when it was the last."""
        self.left -= 1
        self.withdrawn = self.withdrawn or not finished
        return self.left <= 0


@dataclass(eq=False)
class Job:
    """One event (its body serialised once, where it entered) or heartbeat ping to deliver."""

    owner: JobOwner
    source: str
    lane: Hashable | None
    integration_key: str
    path: str = ""
    body: bytes | None = None  # None: a heartbeat ping of ``integration_key``
    origin: str = ""  # where it came from, for logs: topic[partition]@offset or queue id
    received: float = field(default_factory=time.monotonic)
    attempts: int = 0  # attempts that counted: every answer but a 429
    context: Any = None  # the owner's own bookkeeping (partition state, offset, queue row)
    max_retries: int | None = None  # None: the engine's policy decides; 0 = unlimited
    policy: PolicyUpdate | None = None  # an escalation-policy level update instead of an event
    # wall-clock time after which the event is not sent any more but dead-lettered as stale
    expires_at: float | None = None
    last_result: Result | None = None  # the answer to its last attempt, for stuck reports
    route: str = ""  # the route whose event it is ("default": the flags'; "": no route)
    position: Position | None = None  # where its message is (the journal shows it)
    notes: Any = None  # the recorder's notes on it so far (the journal's: its answers)

    @property
    def heartbeat(self) -> bool:
        """True for a heartbeat ping."""
        return self.body is None and self.policy is None

    @property
    def kind(self) -> str:
        """"key" for an event, "heartbeat" or "policy": which pacing bucket and gate key."""
        return "policy" if self.policy is not None else "heartbeat" if self.body is None \
            else "key"

    @property
    def shown_route(self) -> str | None:
        """The route ilert's stand-in is told of (``X-Ilagent-Route``): a ``[[route]]`` 's
        name; None for the flags' route and anything without one, whose requests stay as
        they were."""
        return self.route if self.route and self.route != FLAG_ROUTE else None

    @property
    def shown_key(self) -> str:
        """The key as logs show it (masked; policy updates say which policy)."""
        if self.policy is not None:
            return f"policy {self.policy.routing_key!r} level {self.policy.level}"
        return mask_key(self.integration_key)
