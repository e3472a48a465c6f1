"""One request to ilert for a job, sent only when the gate, the pacing and a free slot allow.

The order matters and is the point of this module:

1. Per key, jobs take turns (a FIFO lock), so the lanes of one busy key queue behind each other
   instead of all waking for every token.
2. The key's own limits first, without holding anything shared: its 429 block and its token
   bucket. A key that must wait holds no slot and no share of the process-wide limit, so it
   cannot delay other keys.
3. A concurrency slot, then the gate (single flight, the circuit) — checked right before the
   send, so even the first burst of a failing key is one request.
4. The key's and the total token, taken together at the moment of sending.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable

from ilagent.delivery.gate import Admission, Gate
from ilagent.delivery.job import EXPIRED, Job
from ilagent.delivery.pacing import Pacer
from ilagent.delivery.policy_sync import KEY_REFUSED, PolicySync
from ilagent.ilert import IlertClient, Outcome, Result
from ilagent.metrics import Metrics

# a queued policy update (buffered MQTT) met by a daemon started without ILERT_API_KEY
NO_POLICY_SYNC = Result(Outcome.REJECTED, None, "policy sync is not configured: the daemon has "
                        "no ILERT_API_KEY (retry it with `ilagent queue retry` once it has)",
                        reason="no_api_key")


class Sender:
    """Sends one attempt of a job when it may go; shared by every lane of a Deliverer."""

    def __init__(
        self,
        *,
        client: IlertClient,
        gate: Gate,
        pacer: Pacer,
        metrics: Metrics,
        max_in_flight: int,
        withdrawn: Callable[[Job], bool],
        policies: PolicySync | None = None,
    ) -> None:
        self._client = client
        self._policies = policies
        self._gate = gate
        self._pacer = pacer
        self._metrics = metrics
        self._slots = asyncio.Semaphore(max(1, max_in_flight))
        self._withdrawn = withdrawn
        self._turns: dict[str, deque[asyncio.Future[None]]] = {}  # key: jobs awaiting a turn
        self._wake = asyncio.Event()
        gate.listeners.append(lambda _open: self.wake())  # end backoff sleeps at once
        self._blocked: set[str] = set()  # keys whose blocked gauge is set

    @staticmethod
    def gate_key(job: Job) -> str:
        """The gate's key of a job: heartbeat keys and policy sync apart from integration keys."""
        return f"{job.kind}:{job.integration_key}" if job.kind != "key" else job.integration_key

    def wake(self) -> None:
        """Wake every waiting job to check whether it was withdrawn."""
        self._wake.set()
        self._wake = asyncio.Event()
        self._gate.wake()

    async def send(self, job: Job) -> Result | None:
        """One attempt; None when the job was withdrawn while it waited; :data:`EXPIRED`
        without a request when it grew older than its ``expires_at`` meanwhile."""
        key = self.gate_key(job)
        await self._take_turn(key)
        try:
            admission = await self._admit(job, key)
        finally:
            self._pass_turn(key)
        if admission is None:
            return None
        if job.expires_at is not None and time.time() >= job.expires_at:
            self._gate.cancel(key, admission)  # waited out an outage: too late to page now
            self._slots.release()
            return EXPIRED
        try:
            if job.policy is not None:
                result = (await self._policies.apply(job.policy) if self._policies is not None
                          else NO_POLICY_SYNC)
            elif job.body is None:
                result = await self._client.ping_heartbeat(job.integration_key)
            else:
                result = await self._client.post_event(job.path, job.body, route=job.shown_route)
        except BaseException:
            self._gate.cancel(key, admission)
            raise
        finally:
            self._slots.release()
        if result.outcome is not Outcome.RATE_LIMITED:  # a 429 is a wait, not a failure
            job.attempts += 1
        # a refused policy API key is an answer: ilert is up, the circuit must not open over it
        gate_outcome = Outcome.REJECTED if result.reason == KEY_REFUSED else result.outcome
        block = self._gate.settle(key, job.lane, gate_outcome, admission=admission,
                                  retry_after=result.retry_after)
        if block:
            self._metrics.key_blocked.labels(job.shown_key).set(block)
            self._blocked.add(key)
        elif key in self._blocked and result.outcome is not Outcome.RETRY:
            self._blocked.discard(key)
            self._metrics.key_blocked.remove(job.shown_key)
        return result

    async def _admit(self, job: Job, key: str) -> Admission | None:
        """Wait until the job may go; return its admission, holding a slot (None: withdrawn)."""
        kind = job.kind
        while True:
            if self._withdrawn(job):
                return None
            blocked = self._gate.blocked_until(key) - time.monotonic()
            paced = self._pacer.wait(job.integration_key, kind=kind)
            wait = max(blocked, paced)
            if wait > 0:
                self._count_wait("rate_limited" if blocked >= paced else kind)
                if not await self.sleep(job, wait):
                    return None
                continue
            await self._slots.acquire()
            admission = self._gate.admit(key)
            if not admission.ok:
                self._slots.release()
                self._count_gate(admission.reason)
                await self._gate.wait(admission)
                continue
            wait, scope = self._pacer.take(job.integration_key, kind=kind)
            if wait > 0:
                self._gate.cancel(key, admission)
                self._slots.release()
                self._count_wait(scope or "total")
                if not await self.sleep(job, wait):
                    return None
                continue
            return admission

    async def sleep(self, job: Job, seconds: float, *, epoch: int | None = None) -> bool:
        """Sleep, waking early if the job is withdrawn or (given ``epoch``) the circuit moved.

        True if the job is still wanted.
        """
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self._withdrawn(job):
                return False
            if epoch is not None and self._gate.epoch != epoch:
                break
            wake = self._wake
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await wake.wait()
        return not self._withdrawn(job)

    async def _take_turn(self, key: str) -> None:
        """Jobs of one key pass the admission one at a time, in the order they came: wait
        for this job's turn (at once when no other job of the key is there, the usual case,
        which then costs a dict entry instead of a lock). Pair with :meth:`_pass_turn`."""
        waiting = self._turns.get(key)
        if waiting is None:
            self._turns[key] = deque()
            return
        turn = asyncio.get_running_loop().create_future()
        waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._pass_turn(key)  # the turn came with the cancellation: hand it on
            else:  # still queued, unless a passing turn already skipped it
                with contextlib.suppress(ValueError):
                    waiting.remove(turn)
            raise

    def _pass_turn(self, key: str) -> None:
        """This job's turn ended: the next waiting job of the key (in order) takes it."""
        waiting = self._turns[key]
        while waiting:
            turn = waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        del self._turns[key]

    def _count_wait(self, scope: str) -> None:
        self._metrics.rate_limit_waits.labels(scope).inc()

    def _count_gate(self, reason: str) -> None:
        self._metrics.gate_waits.labels(reason).inc()
