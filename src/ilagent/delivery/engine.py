"""The delivery engine: ordered lanes per alert, bounded concurrency, pacing and retries.

Every job names a *lane*: events of one lane go to ilert strictly one after another in the
order they were submitted (Kafka: offset order), lanes run concurrently up to
``max_in_flight`` requests at once. A failing job keeps the head of its lane and retries with
backoff there, so it holds back only its own lane; other lanes go on. A job without a lane runs
on its own, in a lane of its own. A lane disappears when it runs empty, so memory follows the
live key set.

Each running lane has a task of its own, so a lane that waits out a backoff holds back no other
lane. Its task does not end with the lane: it waits, idle, to run the next new lane, as long as
fewer than ``max_in_flight`` tasks already wait so. When alert keys vary (or events have
none), most events open a new lane, and waking an idle task costs about half of creating one
(issue 27).

Before each request the :class:`~ilagent.delivery.gate.Gate` decides whether it may go (429 blocks,
single flight, the circuit) and the :class:`~ilagent.delivery.pacing.Pacer` takes its tokens; see
:class:`Sender`. While the circuit is open, failed jobs skip their own backoff and wait for it.

The engine never finishes a job silently: it calls its owner back with ``DELIVERED`` or
``DEAD_LETTER`` (rejected by ilert, retries exhausted, stale — past its ``expires_at``, see
``--max_event_age`` — or an internal error while handling it),
``SUPERSEDED`` (a heartbeat ping made needless by a newer one of the same key), or with
``abandoned`` when the job's owner withdrew it (partition revoked) or the engine stops — such a
job stays unfinished, so its offset or queue row is not committed and it is delivered again.

``--max_retries`` counts failed attempts: a 429 is a wait, not a failure, and does not count.

A :class:`~ilagent.delivery.job.Recorder` (the journal), when given, is told of each answer
a job got and of its end, right where the engine learns them; drills and the heartbeat proxy's
``send_now`` are not recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Hashable
from typing import Any

from ilagent.config import DEFAULT_MAX_IN_FLIGHT, RetryPolicy
from ilagent.delivery import backoff
from ilagent.delivery.gate import Gate
from ilagent.delivery.job import EXPIRED, STALE, Job, JobOwner, Recorder, Verdict
from ilagent.delivery.pacing import Pacer
from ilagent.delivery.policy_sync import KEY_REFUSED, PolicySync
from ilagent.delivery.sender import Sender
from ilagent.ilert import IlertClient, Outcome, Result
from ilagent.logs import EACH
from ilagent.metrics import Metrics

__all__ = ["EXPIRED", "STALE", "Deliverer", "Job", "JobOwner", "Verdict"]

logger = logging.getLogger(__name__)
LINES_PER_SECOND = 10  # delivery lines at -vv; above that, a count per second


class Deliverer:
    """Runs jobs against ilert with per-lane order, pacing, retries and bounded concurrency."""

    def __init__(
        self,
        *,
        client: IlertClient,
        policy: RetryPolicy,
        pacer: Pacer,
        metrics: Metrics,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        gate: Gate | None = None,
        policies: PolicySync | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self._policy = policy
        self._recorder = recorder
        self._metrics = metrics
        self.gate = gate or Gate(rate_limit_delay=policy.rate_limit_delay)
        self._sender = Sender(client=client, gate=self.gate, pacer=pacer, metrics=metrics,
                              max_in_flight=max_in_flight, withdrawn=self._withdrawn,
                              policies=policies)
        self._lanes: dict[Hashable, deque[Job]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle_runners: deque[asyncio.Future[Hashable]] = deque()  # lane tasks between lanes
        self._keep_idle = max_in_flight
        self._stopping = False
        self._jobs = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._responses: dict[int | None, Any] = {}  # metric children by status, looked up once
        self._delivered: dict[tuple[str, str], tuple[Any, Any]] = {}  # and by source and route
        self._second, self._reported, self._unreported = 0.0, 0, 0  # delivery lines this second

    @property
    def pending(self) -> int:
        """Jobs submitted and not yet finished or abandoned."""
        return self._jobs

    def submit(self, job: Job) -> None:
        """Queue a job; it starts at once unless its lane is busy."""
        self._jobs += 1
        self._idle.clear()
        self._metrics.in_flight.inc()
        key = job.lane
        lane = None if key is None else self._lanes.get(key)
        if lane is None:
            if key is None:
                key = object()  # no order to keep with any other job: a lane of its own
            self._lanes[key] = deque([job])
            self._start_lane(key)
            return
        if job.heartbeat:
            self._supersede(lane)
        lane.append(job)

    def _supersede(self, lane: deque[Job]) -> None:
        """A newer ping of the key arrived: the ones still queued (not the head) are needless."""
        while len(lane) > 1:
            old = lane.pop()
            self._metrics.heartbeats_coalesced.labels(old.source).inc()
            self._spawn(self._end_superseded(old))

    async def _end_superseded(self, job: Job) -> None:
        try:
            await job.owner.finished(job, Verdict.SUPERSEDED, None, "")
        finally:
            self._end(job)

    async def send_now(self, job: Job) -> Result | None:
        """One attempt of ``job`` at once, outside the lanes and without a retry, through the
        same gate, pacing and slots as every job (the heartbeat proxy answers its client with
        the result); None when the engine stopped meanwhile. Its owner is not called back."""
        result = await self._sender.send(job)
        if result is not None:
            self._count_response(result)
        return result

    async def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for every submitted job to end; True if they did."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        return self._idle.is_set()

    def wake(self) -> None:
        """Wake every waiting job to check whether it was withdrawn (after a revoke)."""
        self._sender.wake()

    async def stop(self, timeout: float) -> bool:
        """Let jobs that are being sent finish for up to ``timeout`` s, abandon the rest."""
        self._stopping = True
        self.wake()
        drained = await self.wait_idle(timeout)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        return drained

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _end(self, job: Job) -> None:
        self._jobs -= 1
        self._metrics.in_flight.dec()
        if self._jobs == 0:
            self._idle.set()

    def _start_lane(self, key: Hashable) -> None:
        """Hand a new lane to the task that went idle last, or to a new task."""
        while self._idle_runners:
            runner = self._idle_runners.pop()
            if not runner.done():  # cancelled while idle: the engine is stopping
                runner.set_result(key)
                return
        self._spawn(self._run_lanes(key))

    async def _run_lanes(self, key: Hashable) -> None:
        """Run a lane to its end, then wait to run the next new one (or end, when enough tasks
        already wait)."""
        loop = asyncio.get_running_loop()
        while True:
            await self._run_lane(key)
            if self._stopping or len(self._idle_runners) >= self._keep_idle:
                return
            runner: asyncio.Future[Hashable] = loop.create_future()
            self._idle_runners.append(runner)
            try:
                key = await runner
            except asyncio.CancelledError:
                if runner.done() and not runner.cancelled():
                    # handed a lane in the instant it was cancelled: abandon its jobs
                    self._abandon_lane(runner.result())
                raise

    async def _run_lane(self, key: Hashable) -> None:
        lane = self._lanes[key]
        try:
            while lane:
                job = lane[0]
                try:
                    await self._deliver(job)
                finally:
                    lane.popleft()
                    self._end(job)
        finally:
            self._abandon_lane(key)

    def _abandon_lane(self, key: Hashable) -> None:
        """Remove a lane; at shutdown whatever is still queued there is abandoned, not lost."""
        lane = self._lanes.pop(key)
        while lane:
            job = lane.popleft()
            job.owner.abandoned(job)
            self._end(job)

    def _count_response(self, result: Result) -> None:
        counter = self._responses.get(result.status)
        if counter is None:
            counter = self._responses[result.status] = self._metrics.responses.labels(
                result.status_label)
        counter.inc()

    def _delivery_metrics(self, source: str, route: str) -> tuple[Any, Any]:
        """The delivered counter and latency histogram of a source and route (looked up once:
        ``labels()`` hashes and locks every time)."""
        children = self._delivered.get((source, route))
        if children is None:
            children = self._delivered[(source, route)] = (
                self._metrics.delivered.labels(source, route),
                self._metrics.latency.labels(source))
        return children

    def _exhausted(self, job: Job) -> bool:
        limit = self._policy.max_retries if job.max_retries is None else job.max_retries
        return limit > 0 and job.attempts > limit

    def _withdrawn(self, job: Job) -> bool:
        return self._stopping or job.owner.cancelled(job)

    async def _deliver(self, job: Job) -> None:
        """Deliver one job to its end; an unexpected error dead-letters it, never the lane."""
        try:
            await self._attempts(job)
        except asyncio.CancelledError:
            job.owner.abandoned(job)
            raise
        except Exception:
            logger.exception("internal error while delivering %s (%s); dead-lettering it",
                             job.origin, job.shown_key, extra=EACH)
            self._metrics.dead_lettered.labels(job.source, "internal_error", job.route).inc()
            try:
                await self._finish(job, Verdict.DEAD_LETTER, None, "internal_error")
            except Exception:
                logger.exception("could not dead-letter %s; it stays unfinished", job.origin)
                job.owner.abandoned(job)

    async def _attempts(self, job: Job) -> None:
        """Send until ilert decides, the job is withdrawn, or retries run out."""
        source = job.source
        while True:
            if job.expires_at is not None and time.time() >= job.expires_at:
                await self._stale(job)
                return
            asked = time.monotonic()
            result = await self._sender.send(job)
            if result is None:
                job.owner.abandoned(job)
                return
            if result is EXPIRED:
                await self._stale(job)
                return
            job.last_result = result
            if self._recorder is not None:
                self._recorder.answered(job, result, time.monotonic() - asked
                                        if result.elapsed is None else result.elapsed)
            self._count_response(result)
            if result.outcome is Outcome.DELIVERED:
                if job.heartbeat:
                    self._metrics.heartbeats.labels(source).inc()
                elif job.policy is not None:
                    self._metrics.policy_updates.labels(source).inc()
                else:
                    delivered, latency = self._delivery_metrics(source, job.route)
                    delivered.inc()
                    latency.observe(time.monotonic() - job.received)
                self._report_delivered(job)
                await self._finish(job, Verdict.DELIVERED, result, "")
                return
            if result.outcome is Outcome.REJECTED:
                reason = result.reason or "rejected"
                self._metrics.dead_lettered.labels(source, reason, job.route).inc()
                logger.error("ilert rejected %s (%s) with HTTP %s, a dead letter %s: %s",
                             job.origin, job.shown_key, result.status, reason, result.detail,
                             extra=EACH)
                await self._finish(job, Verdict.DEAD_LETTER, result, reason)
                return
            if (result.outcome is not Outcome.RATE_LIMITED and result.reason != KEY_REFUSED
                    and self._exhausted(job)):
                self._metrics.dead_lettered.labels(source, "retries_exhausted", job.route).inc()
                logger.error("giving up on %s (%s) after %d attempts, last: %s %s",
                             job.origin, job.shown_key, job.attempts,
                             result.status_label, result.detail, extra=EACH)
                await self._finish(job, Verdict.DEAD_LETTER, result, "retries_exhausted")
                return
            await self._back_off(job, result)

    async def _stale(self, job: Job) -> None:
        """An event too old to page anyone with: a dead letter instead of a late page."""
        self._metrics.dead_lettered.labels(job.source, STALE, job.route).inc()
        logger.warning("not sending %s (%s): older than --max_event_age", job.origin,
                       job.shown_key, extra=EACH)
        expired = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(job.expires_at or 0))
        detail = f"older than --max_event_age since {expired}: not sent"
        await self._finish(job, Verdict.DEAD_LETTER,
                           Result(Outcome.REJECTED, None, detail, reason=STALE), STALE)

    async def _finish(self, job: Job, verdict: Verdict, result: Result | None,
                      reason: str) -> None:
        """The job ended: the recorder hears it first, then its owner."""
        if self._recorder is not None:
            self._recorder.ended(job, verdict, result, reason)
        await job.owner.finished(job, verdict, result, reason)

    def _report_delivered(self, job: Job) -> None:
        """One INFO line per delivery (``-vv``), at most :data:`LINES_PER_SECOND` a second;
        beyond that one line a second with how many more went out."""
        now = time.monotonic()
        if now - self._second >= 1.0:
            if self._unreported:
                logger.info("delivered %d more in the last %.0f s", self._unreported,
                            now - self._second)
            self._second, self._reported, self._unreported = now, 0, 0
        if self._reported < LINES_PER_SECOND:
            self._reported += 1
            logger.info("delivered %s (%s) after %d attempt(s)", job.origin,
                        job.shown_key, job.attempts)
        else:
            self._unreported += 1

    async def _back_off(self, job: Job, result: Result) -> None:
        self._metrics.retried.labels(job.source, result.status_label).inc()
        epoch = self.gate.epoch
        if result.outcome is Outcome.RATE_LIMITED:
            # the gate blocks the whole key; the job waits there, not here
            delay = max(0.0, self.gate.blocked_until(self._sender.gate_key(job))
                        - time.monotonic())
        elif self.gate.open:
            delay = 0.0  # the circuit decides when the next request goes, for every lane
        else:
            delay = backoff.delay(self._policy, job.attempts)
        job.owner.attempted(job, result, delay)
        # a warning for the first failures and then at powers of two keeps outages readable
        count = max(job.attempts, 1)
        level = logging.WARNING if count & (count - 1) == 0 else logging.DEBUG
        logger.log(level, "attempt %d for %s (%s) failed: %s %s; retrying in %.1f s",
                   job.attempts, job.origin, job.shown_key,
                   result.status_label, result.detail, delay)
        if result.outcome is not Outcome.RATE_LIMITED:
            await self._sender.sleep(job, delay, epoch=epoch)
