"""Kafka to ilert: maps each consumed message and settles it once its delivery ended.

The :class:`~ilagent.kafka.consumer.PollThread` hands batches of messages to the event loop;
here each message is mapped (ilagent 0.9's rules), submitted to the
:class:`~ilagent.delivery.Deliverer` on its lane, and — delivered, filtered or dead-lettered —
finished in its partition's :class:`~ilagent.offsets.OffsetTracker`. The poll thread stores
only each partition's contiguous watermark (the first unfinished offset), so a crash never
skips a message that was not delivered, filtered or dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Message

from ilagent.config import KafkaSettings, MappingRules, RetryPolicy
from ilagent.delivery import Deliverer, Job, Verdict
from ilagent.ilert import Result
from ilagent.kafka.consumer import Batch, PollThread
from ilagent.kafka.deadletter import DeadLetterWriter
from ilagent.kafka.partitions import Handoff, PartitionState, TPKey, offset_of, origin
from ilagent.kafka.stats import record_lag
from ilagent.mapping import Dropped, Mapped, heartbeat_key, map_message
from ilagent.metrics import Metrics
from ilagent.routing import heartbeat_lane, message_lane

logger = logging.getLogger(__name__)

SOURCE = "kafka"


class KafkaBridge:
    """Consumes the event and heartbeat topics and delivers them through a Deliverer."""

    def __init__(
        self,
        *,
        settings: KafkaSettings,
        rules: MappingRules,
        deliverer: Deliverer,
        metrics: Metrics,
        policy: RetryPolicy,
    ) -> None:
        self.settings = settings
        self._rules = rules
        self._deliverer = deliverer
        self._metrics = metrics
        self._handoff = Handoff()
        self._dead_letters = DeadLetterWriter(settings=settings, policy=policy)
        self._poller: PollThread | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._event_topics = frozenset(settings.event_topics)
        self._consumed = metrics.consumed.labels(SOURCE)
        self._filtered = metrics.filtered.labels(SOURCE)

    # ---- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Create the consumer and start the poll thread."""
        self._dead_letters.start()
        self._poller = PollThread(
            settings=self.settings, handoff=self._handoff, metrics=self._metrics,
            loop=asyncio.get_running_loop(), on_batch=self._on_batch, drain=self._drain,
            stats_cb=functools.partial(record_lag, self._metrics))
        self._poller.start()

    @property
    def exited(self) -> bool:
        """True once the poll thread ended."""
        return self._poller is not None and self._poller.exited

    @property
    def last_error(self) -> str:
        """The last error the consumer reported."""
        return self._poller.last_error if self._poller is not None else ""

    @property
    def ready(self) -> bool:
        """True when the consumer joined its group and holds at least one partition."""
        return self._poller is not None and bool(self._poller.assigned) and not self.exited

    def readiness(self) -> dict[str, Any]:
        """Why the bridge is (not) ready, for ``/ready``."""
        assigned = len(self._poller.assigned) if self._poller is not None else 0
        return {"component": "kafka", "assigned_partitions": assigned,
                "worker_exited": self.exited, "error": self.last_error}

    def stop_fetching(self) -> None:
        """Stop handing out new messages (shutdown step one); polling goes on."""
        if self._poller is not None:
            self._poller.fetching = False

    async def close(self) -> None:
        """Commit the watermarks, leave the group and end the poll thread."""
        if self._poller is not None:
            self._poller.closing = True
            await asyncio.to_thread(self._poller.join)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._dead_letters.close()

    # ---- rebalance (asked for by the poll thread) --------------------------------------------

    async def _drain(self, states: list[PartitionState]) -> None:
        for state in states:
            state.revoked = True
            state.drained = asyncio.Event()
            if state.live == 0:
                state.drained.set()
        self._deliverer.wake()  # jobs of these partitions waiting out a backoff give up now
        waits = [s.drained.wait() for s in states if s.drained is not None]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits), self.settings.revoke_timeout)

    # ---- dispatch ----------------------------------------------------------------------------

    def _on_batch(self, batch: Batch) -> None:
        rules, deliverer = self._rules, self._deliverer
        self._handoff.mapped(len(batch))
        done: dict[TPKey, PartitionState] = {}  # partitions with messages finished right here
        started: dict[TPKey, list[Any]] = {}  # messages that went on to delivery, per partition
        filtered = 0
        consumed = 0
        for state, message in batch:
            if state.revoked:  # never started; the partition's next owner reads it again
                continue
            consumed += 1
            offset = offset_of(message)
            topic = state.topic
            if topic in self._event_topics:
                outcome = map_message(rules, message.value(), topic=topic,
                                      message_key=message.key())
                if isinstance(outcome, Mapped):
                    for warning in outcome.warnings:
                        logger.warning("%s: %s", origin(message), warning)
                    state.tracker.add(offset)
                    state.live += 1
                    started.setdefault(state.key, [state, 0])[1] += 1
                    deliverer.submit(Job(
                        owner=self, source=SOURCE, lane=message_lane(outcome, message.key()),
                        integration_key=outcome.integration_key, path=outcome.path,
                        event=outcome.event, origin=origin(message),
                        context=(state, message)))
                    continue
                if outcome.filtered:
                    # the common case when most messages are filtered: no tracking needed
                    state.tracker.skip(offset)
                    filtered += 1
                    done[state.key] = state
                    continue
                state.tracker.add(offset)
                state.live += 1
                started.setdefault(state.key, [state, 0])[1] += 1
                self._reject(state, message, outcome)
                continue
            state.tracker.add(offset)
            state.live += 1
            started.setdefault(state.key, [state, 0])[1] += 1
            key = heartbeat_key(message.value())
            if key is None:
                self._reject(state, message, None)
            else:
                deliverer.submit(Job(
                    owner=self, source=SOURCE, lane=heartbeat_lane(key), integration_key=key,
                    origin=origin(message), context=(state, message)))
        if consumed:
            self._consumed.inc(consumed)
        if filtered:
            self._filtered.inc(filtered)
        if done or started:
            self._settle(done.values(), started.values())

    def _settle(self, done: Iterable[PartitionState], started: Iterable[list[Any]]) -> None:
        """After a batch: count the messages now in delivery, store advanced watermarks."""
        for state, count in started:
            self._handoff.started(state, count)
        for state in done:
            self._handoff.store(state)

    def _reject(self, state: PartitionState, message: Message, dropped: Dropped | None) -> None:
        reason = dropped.reason.value if dropped else "invalid_heartbeat"
        detail = dropped.detail if dropped else 'expected {"integrationKey": "<key>"}'
        self._metrics.dead_lettered.labels(SOURCE, reason).inc()
        task = asyncio.get_running_loop().create_task(
            self._dead_letter(state, message, reason=reason, detail=detail, result=None))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dead_letter(self, state: PartitionState, message: Message, *, reason: str,
                           detail: str, result: Result | None) -> None:
        """Store an undeliverable message (DLQ topic, else an ERROR log), then finish it."""
        status = result.status_label if result else ""
        if await self._dead_letters.write(state, message, reason=reason, detail=detail,
                                          status=status):
            self._finish(state, offset_of(message))
        else:
            self._release_one(state)

    # ---- settlement --------------------------------------------------------------------------

    def _finish(self, state: PartitionState, offset: int) -> None:
        state.tracker.finish(offset)
        self._release_one(state)
        self._handoff.store(state)

    def _release_one(self, state: PartitionState) -> None:
        self._handoff.delivered_one(state)
        state.live -= 1
        if state.revoked and state.live == 0 and state.drained is not None:
            state.drained.set()

    # ---- JobOwner ----------------------------------------------------------------------------

    def cancelled(self, job: Job) -> bool:
        state: PartitionState = job.context[0]
        return state.revoked

    def abandoned(self, job: Job) -> None:
        state: PartitionState = job.context[0]
        self._release_one(state)

    def attempted(self, job: Job, result: Result, delay: float) -> None:
        """Nothing to persist: the uncommitted offset is what brings a message back."""

    async def finished(self, job: Job, verdict: Verdict, result: Result | None,
                       reason: str) -> None:
        state, message = job.context
        if verdict is Verdict.DEAD_LETTER:
            detail = result.detail if result else ""
            await self._dead_letter(state, message, reason=reason, detail=detail, result=result)
        else:
            self._finish(state, offset_of(message))
