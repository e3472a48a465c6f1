"""One fire drill, followed stage by stage through each drilled source (pure: no I/O).

A :class:`Round` is one drill: the same drill id goes through every drilled source at once,
and each source's :class:`Trace` records when its drill message passed each :class:`Stage`:

* ``sent`` — produced (Kafka), published (MQTT) or posted (HTTP intake), and taken: a send
  still waiting for the broker's acknowledgement at the deadline fails at ``sent``;
* ``consumed`` — back in this daemon: read from the topic, received, loaded from the spool;
* ``mapped`` — the user's filter and mapping (or routes) made its drill events; filtered or
  dead-lettered there is a failure at ``mapped``;
* ``delivered`` — ilert accepted every one of its drill events; rejected, or still retrying at
  the deadline, is a failure at ``delivered``.

A source whose drill cannot run here and says so (a Kafka member owning no partition of the
drill topic) is *skipped*: neither passed nor failed. At the deadline (:meth:`Round.expire`)
each trace still open fails at the first stage it did not reach. What comes after a trace
ended — a late delivery, a second copy of its message — changes nothing, and
:meth:`Round.consumed` says so, so that the source finishes that copy without sending it.

Times are seconds after the round's start — when every drill message is handed to its source —
read from the injected ``clock`` (tests pass one). A message may come back before its sender
heard the broker's acknowledgement: then ``sent`` takes the time it came back.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


class Stage(enum.StrEnum):
    """The stages of a drill message, in order."""

    SENT = "sent"
    CONSUMED = "consumed"
    MAPPED = "mapped"
    DELIVERED = "delivered"


STAGES = tuple(Stage)


class Verdict(enum.StrEnum):
    """How a round (or one source's drill) ended."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  # nothing proven, nothing failed


@dataclass
class Trace:
    """One source's drill in a round."""

    source: str
    times: dict[Stage, float] = field(default_factory=dict)  # seconds after the round's start
    where: str = ""  # where it was sent: topic[partition], the MQTT topic, the intake's answer
    events: int = 0  # drill events its mapping made (one per route that took it)
    delivered: int = 0  # of those, accepted by ilert
    detail: str = ""  # what the mapping made of it (routes)
    failed: Stage | None = None  # the stage it failed at
    failed_at: float | None = None  # when
    why: str = ""  # why it failed, or why it was skipped
    skipped: bool = False
    retrying: str = ""  # ilert's last answer while a drill event is retried

    @property
    def ended(self) -> bool:
        """Passed, failed or skipped: nothing more can change it."""
        return self.failed is not None or self.skipped or Stage.DELIVERED in self.times

    @property
    def verdict(self) -> Verdict | None:
        """None while open."""
        if self.failed is not None:
            return Verdict.FAILED
        if self.skipped:
            return Verdict.SKIPPED
        return Verdict.PASSED if Stage.DELIVERED in self.times else None

    @property
    def seconds(self) -> float | None:
        """End to end: from the drill's start (when its message was handed to the source) to
        delivered, or to the failure; None while open."""
        return self.times.get(Stage.DELIVERED, self.failed_at)


class Round:
    """One drill through every drilled source, until each passed, failed or was skipped."""

    def __init__(self, drill_id: str, sources: Iterable[str], *,
                 clock: Callable[[], float]) -> None:
        self.id = drill_id
        self._clock = clock
        self.started = clock()
        self.traces = {source: Trace(source) for source in sources}

    def _now(self) -> float:
        return round(self._clock() - self.started, 6)

    def _open(self, source: str) -> Trace | None:
        trace = self.traces.get(source)
        return None if trace is None or trace.ended else trace

    def _fail(self, trace: Trace, stage: Stage, why: str) -> None:
        trace.failed, trace.why, trace.failed_at = stage, why, self._now()

    # ---- what happened to a source's drill ---------------------------------------------------

    def sent(self, source: str, where: str) -> None:
        """The source took the message (where it went): produced and acknowledged by the
        broker, published, posted and answered 202."""
        trace = self.traces.get(source)
        if trace is not None:
            trace.where = where
            trace.times.setdefault(Stage.SENT, self._now())

    def send_failed(self, source: str, why: str, stage: Stage = Stage.SENT) -> None:
        """The source did not take the message (unless it came back already)."""
        trace = self._open(source)
        if trace is not None and Stage.CONSUMED not in trace.times:
            self._fail(trace, stage, why)

    def skipped(self, source: str, why: str) -> None:
        """The source's drill cannot run in this daemon now, and that is no failure."""
        trace = self._open(source)
        if trace is not None:
            trace.skipped, trace.why = True, why

    def consumed(self, source: str) -> bool:
        """The drill message came back through the source; False when its drill is over or
        it came already (a copy: the source finishes it without sending it)."""
        trace = self._open(source)
        if trace is None or Stage.CONSUMED in trace.times:
            return False
        now = self._now()
        trace.times.setdefault(Stage.SENT, now)
        trace.times[Stage.CONSUMED] = now
        return True

    def mapped(self, source: str, events: int, detail: str = "") -> None:
        """The mapping made ``events`` drill events of it (0: it filtered the message)."""
        trace = self._open(source)
        if trace is None:
            return
        trace.detail = detail
        if events < 1:
            self._fail(trace, Stage.MAPPED, detail or "the mapping made no event of it")
            return
        trace.events = events
        trace.times[Stage.MAPPED] = self._now()

    def mapping_failed(self, source: str, why: str) -> None:
        """The mapping filtered or dead-lettered the message."""
        trace = self._open(source)
        if trace is not None:
            self._fail(trace, Stage.MAPPED, why)

    def delivered(self, source: str) -> None:
        """ilert accepted one of the source's drill events; the last one ends the drill."""
        trace = self._open(source)
        if trace is None or Stage.MAPPED not in trace.times:
            return
        trace.delivered += 1
        if trace.delivered >= trace.events:
            trace.times[Stage.DELIVERED] = self._now()

    def retrying(self, source: str, answer: str) -> None:
        """An attempt failed and will be retried (the answer is kept for the report)."""
        trace = self._open(source)
        if trace is not None:
            trace.retrying = answer

    def delivery_failed(self, source: str, why: str) -> None:
        """ilert rejected a drill event (or it was withdrawn)."""
        trace = self._open(source)
        if trace is not None:
            self._fail(trace, Stage.DELIVERED, why)

    def expire(self) -> None:
        """The deadline: every open trace fails at the first stage it did not reach."""
        for trace in self.traces.values():
            if trace.ended:
                continue
            stage = next(s for s in STAGES if s not in trace.times)
            why = {Stage.SENT: "not sent before the deadline",
                   Stage.CONSUMED: "not received back before the deadline",
                   Stage.MAPPED: "not mapped before the deadline",
                   Stage.DELIVERED: (f"still retrying at the deadline (last answer: "
                                     f"{trace.retrying})" if trace.retrying else
                                     "not delivered before the deadline")}[stage]
            self._fail(trace, stage, why)

    # ---- the outcome -------------------------------------------------------------------------

    def over(self, source: str) -> bool:
        """True when the source's drill ended (or is not part of this round)."""
        return self._open(source) is None

    @property
    def done(self) -> bool:
        """Every source's drill ended."""
        return all(trace.ended for trace in self.traces.values())

    @property
    def verdict(self) -> Verdict:
        """Failed if any source failed (or is still open); passed if at least one passed and
        the rest were skipped; skipped if all were."""
        verdicts = [trace.verdict for trace in self.traces.values()]
        if Verdict.FAILED in verdicts or None in verdicts:
            return Verdict.FAILED
        return Verdict.PASSED if Verdict.PASSED in verdicts else Verdict.SKIPPED
