"""The daemon's fire drills: every ``--drill_interval`` one drill through each drilled source,
followed until ilert took its events; the drill heartbeat is pinged when all came through.

A drill (:class:`~ilagent.drills.rounds.Round`) begins by sending the user's sample message,
marked with a fresh drill id, through every drilled source at once
(:class:`~ilagent.drills.sending.DrillSender`). The sources hand the marked message back when
they read it (:meth:`DrillDesk.arrived`, through :mod:`ilagent.drills.marks`) with their mapping's
reading; the desk turns each event of it into a RESOLVE for ``ilagent-drill-<source>``
(:mod:`ilagent.drills.events`) and sends those itself, each attempt through the delivery
engine's gate, pacing and slots like every event (``Deliverer.send_now``), retried with the
daemon's backoff. ilert answers a RESOLVE for an alert that is not open with 400
``NO_OPEN_ALERT_WITH_KEY``: for a drill that is the expected answer (:func:`taken`), and it
never becomes a dead letter or an ERROR line.

Each source's drill must end within ``--drill_timeout`` (default: the interval) of the drill's
start; at that deadline what is still open fails at the stage it did not reach, and its drill
events still retrying are withdrawn. The drill heartbeat is pinged only when no source failed
and at least one passed (a Kafka member that owns no partition of the drill topic skips its
drill: nothing proven there, nothing failed). Drills never overlap: the next one starts an
interval after the last one started, or when it ended if that is later.

The first drill waits until the daemon is ready (every ``/ready`` part), for at most one
interval (``ilagent drill``: the timeout); later drills run whatever the readiness — a source
that is not ready fails its drill, which is the point. With ``once`` (``ilagent drill``) the
daemon stops after the first drill: exit 0 when it passed, 1 when not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Sequence

from ilagent.config import DrillSettings, RetryPolicy
from ilagent.delivery import backoff
from ilagent.delivery.engine import Deliverer, Job, Verdict
from ilagent.drills.events import DrillEvent, drill_events, queued_reading
from ilagent.drills.marks import INTAKE, unknown
from ilagent.drills.report import outcome, summary
from ilagent.drills.rounds import STAGES, Round, Stage
from ilagent.drills.rounds import Verdict as Drilled
from ilagent.drills.sending import DrillSender, Sent
from ilagent.ilert import IlertClient, Outcome, Result
from ilagent.logs import EACH, mask_key
from ilagent.mapping.reading import Reading
from ilagent.metrics import Metrics

logger = logging.getLogger(__name__)

JOB_SOURCE = "drill"  # the source label of drill events in the delivery metrics
READY_POLL = 0.2  # seconds between readiness checks before the first drill


class DrillDesk:
    """Runs the drills, follows them, reports them: the inbox of drill messages and the sender
    of drill events."""

    def __init__(self, *, settings: DrillSettings, senders: Sequence[DrillSender],
                 deliverer: Deliverer, client: IlertClient, metrics: Metrics,
                 ready: Callable[[], bool], stop: Callable[[int], None],
                 retry: RetryPolicy | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._senders = tuple(senders)
        self._deliverer = deliverer
        self._retry = retry or RetryPolicy()
        self._client = client
        self._metrics = metrics
        self._ready = ready
        self._stop = stop
        self._clock = clock
        self.round: Round | None = None  # the drill running now
        self.last: Round | None = None  # the last one that ended
        self.pinged: bool | None = None  # the last drill's heartbeat ping (None: not pinged)
        self._done = asyncio.Event()
        self._deliveries: set[asyncio.Task[None]] = set()
        self._failing: dict[str, Stage | None] = {}  # each source's last failure, for the log

    # ---- the schedule ------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        """Drill every interval until ``stopping`` is set (once, with ``once``)."""
        settings = self.settings
        for sender in self._senders:
            sender.start()
        try:
            await self._wait_ready(stopping, settings.timeout if settings.once
                                   else settings.interval)
            while not stopping.is_set():
                began = self._clock()
                drill = await self.drill()
                await self._conclude(drill)
                if settings.once:  # a ping ilert refused fails it too
                    passed = drill.verdict is Drilled.PASSED and self.pinged is not False
                    self._stop(0 if passed else 1)
                    return
                wait = max(0.0, began + settings.interval - self._clock())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), wait)
        finally:
            for sender in self._senders:
                await sender.close()

    async def _wait_ready(self, stopping: asyncio.Event, limit: float) -> None:
        deadline = self._clock() + limit
        while not (self._ready() or stopping.is_set()) and self._clock() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), READY_POLL)

    async def drill(self) -> Round:
        """One drill through every drilled source, until each ended or the deadline."""
        drill = Round(secrets.token_hex(8), [s.source for s in self._senders], clock=self._clock)
        self.round = drill
        self._done.clear()
        logger.debug("fire drill %s starts", drill.id)
        sends = [asyncio.create_task(self._send(drill, sender)) for sender in self._senders]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._done.wait(), self.settings.timeout)
        drill.expire()
        self.round = None  # from now on its messages are unknown
        self._deliverer.wake()  # drill events waiting for their turn see they are withdrawn
        late = [*sends, *self._deliveries]  # still sending or retrying: over, it failed
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        return drill

    async def _send(self, drill: Round, sender: DrillSender) -> None:
        source = sender.source
        try:
            sent = await sender.send(drill.id, self.settings.message)
        except Exception:
            logger.exception("internal error while sending the %s drill", source, extra=EACH)
            sent = Sent(error="internal error (see the daemon's log)")
        if sent.skipped:
            drill.skipped(source, sent.skipped)
        elif sent.error:
            drill.send_failed(source, sent.error, sent.stage)
        else:
            drill.sent(source, sent.where)
        self._changed(drill)

    def _changed(self, drill: Round) -> None:
        if drill is self.round and drill.done:
            self._done.set()

    # ---- the inbox (sources hand drill messages over) ----------------------------------------

    def arrived(self, source: str, drill_id: str, reading: Reading) -> None:
        """A drill message came back through ``source``: map its drill events, deliver them."""
        drill = self.round
        if drill is None or drill.id != drill_id or not drill.consumed(source):
            unknown(self._metrics, source, drill_id)
            return
        events, what = drill_events(reading, source=source, drill_id=drill_id)
        drill.mapped(source, len(events), what)
        for event in events:
            task = asyncio.get_running_loop().create_task(self._deliver(drill, source, event))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
        self._changed(drill)

    def queued(self, path: str, text: str) -> None:
        """The spool worker loaded an intake drill's row."""
        drill_id, reading = queued_reading(path, text)
        self.arrived(INTAKE, drill_id, reading)

    # ---- delivery of drill events ------------------------------------------------------------

    async def _deliver(self, drill: Round, source: str, event: DrillEvent) -> None:
        """Send one drill event until ilert took it, refused it, or the drill is over: each
        attempt through the engine's gate, pacing and slots (``send_now``), retried with the
        daemon's backoff; a 429 makes the gate hold the key, the next attempt waits there."""
        job = Job(owner=_Owner(drill, source), source=JOB_SOURCE, lane=None,
                  integration_key=event.integration_key, path=event.path, body=event.body,
                  origin=f"drill {drill.id} ({source})", route=event.route)
        failures = 0
        while not drill.over(source):
            result = await self._deliverer.send_now(job)
            if result is None:  # withdrawn: the drill is over, or the engine stopped
                break
            if taken(result):
                drill.delivered(source)
            elif result.outcome is Outcome.REJECTED:
                drill.delivery_failed(source, f"ilert refused it: {_answer(result)}")
            else:
                drill.retrying(source, _answer(result))
                if result.outcome is Outcome.RETRY:
                    failures += 1
                    await asyncio.sleep(backoff.delay(self._retry, failures))
                continue
            break
        self._changed(drill)

    # ---- the outcome -------------------------------------------------------------------------

    async def _conclude(self, drill: Round) -> None:
        """Metrics, log lines, and the heartbeat ping of a drill that passed."""
        self.last = drill
        metrics, now = self._metrics.drill, time.time()
        for trace in drill.traces.values():
            source, verdict = trace.source, trace.verdict or Drilled.FAILED
            metrics.runs.labels(source, verdict.value).inc()
            metrics.last.labels(source).set(now)
            metrics.success.labels(source).set(0 if verdict is Drilled.FAILED else 1)
            for stage in STAGES:
                metrics.failed_stage.labels(source, stage.value).set(
                    1 if trace.failed is stage else 0)
            if trace.failed is not None:
                metrics.failures.labels(source, trace.failed.value).inc()
            if not trace.skipped and trace.seconds is not None:
                metrics.seconds.labels(source).set(trace.seconds)
            self._log_change(source, trace.failed, outcome(trace))
        verdict = drill.verdict
        logger.info("%s", summary(drill))
        self.pinged = None
        key = self.settings.heartbeat
        if verdict is Drilled.PASSED and key:
            result = await self._client.ping_heartbeat(key)
            self._metrics.responses.labels(result.status_label).inc()
            self.pinged = result.outcome is Outcome.DELIVERED
            if self.pinged:
                self._metrics.heartbeats.labels(JOB_SOURCE).inc()
            else:
                logger.warning("fire drill %s passed, and its heartbeat ping %s failed: %s %s",
                               drill.id, mask_key(key), result.status_label, result.detail)

    def _log_change(self, source: str, failed: Stage | None, what: str) -> None:
        """A WARNING when a source's drill starts failing or fails at another stage, and when
        it passes again; the drills in between are INFO lines (``summary``)."""
        before = self._failing.get(source)
        self._failing[source] = failed
        if failed is not None and failed is not before:
            logger.warning("the %s fire drill %s%s", source, what,
                           "; the drill heartbeat is not pinged" if self.settings.heartbeat
                           else "")
        elif failed is None and before is not None:
            logger.warning("the %s fire drill passes again (%s)", source, what)


NOT_OPEN = "NO_OPEN_ALERT_WITH_KEY"


def taken(result: Result) -> bool:
    """ilert took the drill event: 202, or the 400 ``NO_OPEN_ALERT_WITH_KEY`` with which it
    answers a RESOLVE for an alert that is not open — the drill alert never is, so that is the
    expected answer: ilert read the event, knew the key, and found nothing to resolve."""
    return result.outcome is Outcome.DELIVERED or (
        result.status == 400 and NOT_OPEN in result.detail)


def _answer(result: Result) -> str:
    return f"{result.status_label} {result.detail}".strip()


class _Owner:
    """The owner of a drill event's job: withdrawn once its drill is over. ``send_now`` never
    calls an owner back, so the rest is never used."""

    def __init__(self, drill: Round, source: str) -> None:
        self._drill, self._source = drill, source

    def cancelled(self, job: Job) -> bool:
        return self._drill.over(self._source)

    async def finished(self, job: Job, verdict: Verdict, result: Result | None,
                       reason: str) -> None:
        """Not called (``send_now``)."""

    def abandoned(self, job: Job) -> None:
        """Not called (``send_now``)."""

    def attempted(self, job: Job, result: Result, delay: float) -> None:
        """Not called (``send_now``)."""
