"""Kafka to ilert: maps each consumed message and settles it once its delivery ended.

The :class:`~ilagent.kafka.consumer.PollThread` hands batches of messages to the event loop;
here each message is mapped (ilagent 0.9's rules), submitted to the
:class:`~ilagent.delivery.engine.Deliverer` on its lane, and — delivered, filtered or dead-lettered —
finished in its partition's :class:`~ilagent.offsets.OffsetTracker`. When something finished,
the partition's contiguous watermark (the first unfinished offset) and the map of finished
offsets above it are handed to the poll thread to commit (see :mod:`ilagent.kafka.commits`
for how often): a crash never skips a message that was not delivered, filtered or
dead-lettered, and a message that was is not sent again after a restart or a rebalance.

With ``--max_event_age`` an event (ALERT) whose Kafka timestamp is older than that is not sent
but dead-lettered as ``stale``, also when it grew old waiting for ilert; other event types still
go, so that an alert that was opened is also resolved.

A message that cannot be turned into a request — an event JSON cannot carry on (integers
beyond 64 bits, nesting past the encoder's limit), or any unexpected error while mapping it —
is dead-lettered at once, so nothing stalls its partition's commit position. A fire drill's
message (an ``ilagent.drill`` header) is handed to the drills and finished at once, never
delivered as a real alarm (:mod:`ilagent.drills.marks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from typing import Any

from confluent_kafka import Message

from ilagent.config import KafkaSettings, MappingRules, PolicyRules, RetryPolicy
from ilagent.delivery.drift import RouteWatch
from ilagent.delivery.engine import Deliverer, Job, Verdict
from ilagent.delivery.job import Parts, Position
from ilagent.delivery.lanes import POLICY_KEY, heartbeat_lane, message_lane, policy_lane
from ilagent.delivery.stored import Ending
from ilagent.delivery.stuck import Head
from ilagent.drills.marks import DrillInbox, hand_over, hand_over_row, header_mark
from ilagent.ilert import Result
from ilagent.kafka.commits import CommitRounds
from ilagent.kafka.consumer import FINAL_COMMIT_TIMEOUT, Batch, PollThread
from ilagent.kafka.deadletter import DeadLetterWriter
from ilagent.kafka.partitions import (
    Handoff,
    PartitionState,
    Snapshot,
    TPKey,
    expiry,
    heads,
    offset_of,
    origin,
)
from ilagent.kafka.pauses import clear_held_back, report_pause
from ilagent.kafka.runs import Tally, filter_run
from ilagent.kafka.settlement import Settlement
from ilagent.kafka.spool_reading import SpoolReader, spool_job
from ilagent.kafka.stats import readiness
from ilagent.logs import EACH, Sampled
from ilagent.mapping.messages import FLAG_ROUTE, Dropped, raw_filter_reason
from ilagent.mapping.reading import Event, Fanout, Ping, Refused, read
from ilagent.mapping.routes import Route
from ilagent.mapping.topics import Classifier, Kind, kafka_topics
from ilagent.metrics import Metrics

logger = logging.getLogger(__name__)

SOURCE = "kafka"
MIN_CLOSE = 1.0  # the least a shutdown gives the final commit, however late it comes


class KafkaBridge:
    """Consumes the event, heartbeat and policy topics and delivers them through a Deliverer."""

    def __init__(
        self,
        *,
        settings: KafkaSettings,
        rules: MappingRules,
        policy_rules: PolicyRules | None = None,
        deliverer: Deliverer,
        metrics: Metrics,
        policy: RetryPolicy,
        max_event_age: float = 0.0,
        routes: tuple[Route, ...] = (),
        spool_reader: SpoolReader | None = None,
    ) -> None:
        self.settings = settings
        self.routes = routes  # [[route]]s; none: the mapping flags (replaced on a reload)
        self.drills: DrillInbox | None = None  # fire drills hand their messages here
        self._max_event_age = max_event_age
        self._spool_reader = spool_reader  # reads settings.spool_topic's records (the daemon's)
        self._rules = rules
        self._policy_rules = policy_rules or PolicyRules()
        self._deliverer = deliverer
        self._metrics = metrics
        self._handoff = Handoff()
        self._dead_letters = DeadLetterWriter(settings=settings, policy=policy)
        self._poller: PollThread | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._classify = Classifier([(Kind.EVENT, kafka_topics(settings.event_topics)),
                                     (Kind.HEARTBEAT, kafka_topics(settings.heartbeat_topics)),
                                     (Kind.POLICY, kafka_topics(settings.policy_topics))])
        self._consumed = metrics.consumed.labels(SOURCE)
        self._filtered = metrics.filtered.labels(SOURCE, FLAG_ROUTE)
        self._watch = RouteWatch(metrics, SOURCE)
        self._log_filtered = Sampled(logger, "filtered %s: %s")
        self._rounds = CommitRounds(self._handoff)
        self._settlement = Settlement(self._handoff, self._rounds)

    # ---- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Create the consumer and start the poll thread."""
        self._dead_letters.start()
        self._poller = PollThread(
            settings=self.settings, handoff=self._handoff, metrics=self._metrics,
            loop=asyncio.get_running_loop(), on_batch=self._on_batch, drain=self._drain,
            on_pause=functools.partial(report_pause, self._metrics))
        self._poller.start()

    @property
    def exited(self) -> bool:
        """True once the poll thread ended."""
        return self._poller is not None and self._poller.exited

    @property
    def fatal(self) -> str:
        """A misconfiguration found before the first good start (the daemon exits 2)."""
        return self._poller.fatal if self._poller is not None else ""

    @property
    def ever_ready(self) -> bool:
        """True once the consumer has been a group member with a broker connection."""
        return self._poller is not None and self._poller.ever_ready

    @property
    def last_error(self) -> str:
        """The last error the consumer reported."""
        return self._poller.last_error if self._poller is not None else ""

    def readiness(self) -> dict[str, Any] | None:
        """None while the consumer is a steady group member with a live broker connection,
        else why not, for ``/ready`` (:func:`~ilagent.kafka.stats.readiness`)."""
        return readiness(self._poller)

    def heads(self) -> list[Head]:
        """The oldest unfinished message of each assigned partition (for the stuck watch)."""
        return [] if self._poller is None else heads(self._poller.assigned.values(), SOURCE)

    def stop_fetching(self) -> None:
        """Stop handing out new messages (shutdown step one); polling goes on."""
        if self._poller is not None:
            self._poller.fetching = False

    async def close(self, timeout: float = FINAL_COMMIT_TIMEOUT) -> None:
        """Finish dead letters being written, commit the positions and maps, leave the group
        and end the poll thread — within about ``timeout`` seconds."""
        deadline = time.monotonic() + max(timeout, MIN_CLOSE)
        if self._tasks:  # dead letters on their way: what is written now is committed now
            _done, late = await asyncio.wait(self._tasks, timeout=(deadline - time.monotonic()) / 2)
            for task in late:
                task.cancel()
            if late:
                logger.error("shutdown: %d dead letter(s) could not be written to %s in time; "
                             "their messages stay uncommitted and are read again after the "
                             "restart", len(late), self.settings.dlq_topic)
            await asyncio.gather(*late, return_exceptions=True)
        if self._poller is not None:
            self._poller.final = [(state, snap) for state in list(self._poller.assigned.values())
                                  if not state.revoked and (snap := state.snapshot()) is not None]
            self._poller.final_timeout = max(MIN_CLOSE, deadline - time.monotonic())
            self._poller.closing = True
            await asyncio.to_thread(self._poller.join)
        await self._dead_letters.close(max(0.0, deadline - time.monotonic()))

    # ---- rebalance (asked for by the poll thread) --------------------------------------------

    async def _drain(self, states: list[PartitionState], wait: bool) -> dict[TPKey, Snapshot]:
        """Withdraw the partitions' jobs; with ``wait``, until their requests ended; then what
        to commit of each."""
        for state in states:
            state.revoked = True
            state.drained = asyncio.Event()
            if state.live == 0:
                state.drained.set()
            clear_held_back(self._metrics, state)
            self._rounds.forget(state)
        self._deliverer.wake()  # jobs of these partitions waiting out a backoff give up now
        if not wait:
            return {}
        waits = [s.drained.wait() for s in states if s.drained is not None]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits), self.settings.revoke_timeout)
        return {state.key: snap for state in states if (snap := state.snapshot()) is not None}

    # ---- dispatch ----------------------------------------------------------------------------

    def _on_batch(self, batch: Batch) -> None:
        tally = Tally(time.monotonic())
        spool_topic = self.settings.spool_topic if self._spool_reader is not None else None
        # the flags' filter on an event topic, told from the raw bytes where they can: most
        # messages of a filtered topic end here, without a parse or anything else
        raw_filter = self._rules.filter_key is not None and not self.routes
        self._handoff.mapped(sum(len(run) for _state, run in batch))
        for state, run in batch:
            if state.revoked:  # never started; the partition's next owner reads it again
                continue
            topic = state.topic
            spooled = topic == spool_topic
            if not spooled:  # a spool record was counted once: as http or mqtt
                tally.consumed += len(run)
            kind = self._classify(topic)
            if (raw_filter and kind is Kind.EVENT and not spooled
                    and offset_of(run[0]) >= state.restored_until):
                filter_run(self._rules, state, run, tally, log=self._log_filtered,
                           read_one=functools.partial(self._one, state, kind=Kind.EVENT,
                                                      spooled=False, tally=tally))
            else:
                for message in run:
                    self._one(state, message, kind=kind, spooled=spooled, tally=tally)
        if tally.consumed:
            self._consumed.inc(tally.consumed)
        if tally.filtered:
            self._filtered.inc(tally.filtered)
        if tally.skipped:
            self._metrics.finished_skipped.inc(tally.skipped)
        if tally.done or tally.started:
            self._settlement.settle(tally.done.values(), tally.started.values())

    def _one(self, state: PartitionState, message: Message, *, kind: Kind | None,
             spooled: bool, tally: Tally) -> None:
        """One message: skipped, filtered, handed to the drills, or on to delivery."""
        offset = offset_of(message)
        if offset < state.restored_until and state.tracker.restored(offset):
            state.tracker.skip(offset)  # finished before a restart or a rebalance
            tally.skipped += 1
            tally.done[state.key] = state
            return
        done, started, now = tally.done, tally.started, tally.now
        if spooled:
            self._spool(state, offset, message, started, done, now)
            return
        rules, routes, value = self._rules, self.routes, message.value()
        if (rules.filter_key is not None and not routes and kind is Kind.EVENT
                and message.headers() is None  # no drill
                and (reason := raw_filter_reason(rules, value)) is not None):
            tally.filtered += 1
            self._filtered_here(state, offset, message, reason, done)
            return
        try:
            reading = read(kind, value, topic=state.topic, rules=rules,
                           policy_rules=self._policy_rules, source=SOURCE,
                           message_key=message.key(), routes=routes)
        except Exception:
            logger.exception("internal error while mapping %s; dead-lettering it",
                             origin(message), extra=EACH)
            reading = Refused("internal_error", "see the daemon's log")
        if (drill := header_mark(message.headers())) is not None:  # never a real alarm
            hand_over(self.drills, self._metrics, SOURCE, drill, reading)
            state.tracker.skip(offset)
            done[state.key] = state
            return
        if isinstance(reading, Fanout):
            self._watch.fanout(reading)
        if isinstance(reading, Dropped) or (isinstance(reading, Fanout)
                                            and reading.filtered):
            if isinstance(reading, Dropped):
                tally.filtered += 1
            self._filtered_here(state, offset, message, reading.detail, done)
            return
        self._settlement.start(state, offset, started, now)
        if isinstance(reading, Fanout):
            parts = Parts(len(reading.parts)) if len(reading.parts) > 1 else None
            for part in reading.parts:
                if isinstance(part, Event):
                    self._submit_event(state, offset, message, part, parts)
                else:
                    self._reject(state, message, part.reason, part.detail, parts,
                                 part.route)
        elif isinstance(reading, Refused):
            self._reject(state, message, reading.reason, reading.detail)
        elif isinstance(reading, Event):
            self._watch.mapped(reading.mapped)
            self._submit_event(state, offset, message, reading, None)
        elif isinstance(reading, Ping):
            self._submit(state, offset, Job(
                owner=self, source=SOURCE, lane=heartbeat_lane(reading.key),
                integration_key=reading.key, origin=origin(message),
                context=(state, message, None)))
        else:
            self._submit(state, offset, Job(
                owner=self, source=SOURCE, lane=policy_lane(reading),
                integration_key=POLICY_KEY, policy=reading, origin=origin(message),
                context=(state, message, None)))

    def _filtered_here(self, state: PartitionState, offset: int, message: Message,
                       reason: str, done: dict[TPKey, PartitionState]) -> None:
        """A filtered message ends in the batch, untracked (as a stretch of them does in
        :func:`~ilagent.kafka.runs.filter_run`); its line is sampled, its origin made only for
        a line written."""
        state.tracker.skip(offset)
        if self._log_filtered.wanted():
            self._log_filtered.write(origin(message), reason)
        done[state.key] = state

    def _spool(self, state: PartitionState, offset: int, message: Message,
               started: dict[TPKey, list[Any]], done: dict[TPKey, PartitionState],
               now: float) -> None:
        """An intake event from the Kafka spool (:mod:`ilagent.kafka.spool_reading`)."""
        assert self._spool_reader is not None
        what = spool_job(message, self._spool_reader, owner=self,
                         context=(state, message, None), max_event_age=self._max_event_age,
                         drill=lambda path, text: hand_over_row(self.drills, self._metrics,
                                                                 path, text))
        if isinstance(what, Ending) and what.reason is None:  # a drill's: nothing to send
            state.tracker.skip(offset)
            done[state.key] = state
            return
        self._settlement.start(state, offset, started, now)
        if isinstance(what, Ending):
            self._reject(state, message, what.reason or "", what.detail)
        else:
            self._submit(state, offset, what)

    def _submit_event(self, state: PartitionState, offset: int, message: Message,
                      event: Event, parts: Parts | None) -> None:
        mapped = event.mapped
        for warning in mapped.warnings:
            logger.warning("%s: %s", origin(message), warning)
        self._submit(state, offset, Job(
            owner=self, source=SOURCE, lane=message_lane(mapped, message.key()),
            integration_key=mapped.integration_key, path=mapped.path, body=event.body,
            origin=origin(message), context=(state, message, parts),
            expires_at=expiry(message, mapped.event, self._max_event_age), route=mapped.route,
            position=Position(state.topic, message.partition(), offset)))

    def _submit(self, state: PartitionState, offset: int, job: Job) -> None:
        state.waiting.setdefault(offset, job)
        self._deliverer.submit(job)

    def _reject(self, state: PartitionState, message: Message, reason: str, detail: str,
                parts: Parts | None = None, route: str = "") -> None:
        self._metrics.dead_lettered.labels(SOURCE, reason, route).inc()
        task = asyncio.get_running_loop().create_task(
            self._dead_letter(state, message, reason=reason, detail=detail, result=None,
                              parts=parts, route=route))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dead_letter(self, state: PartitionState, message: Message, *, reason: str,
                           detail: str, result: Result | None, logged: bool = False,
                           parts: Parts | None = None, route: str = "") -> None:
        """Store an undeliverable message (DLQ topic, else an ERROR log unless ``logged``
        already by the engine), then finish it (or its part of it)."""
        # the DLQ header names an HTTP status, or how the request failed; "" when none was made
        status = "" if result is None or result.status_label == "none" else result.status_label
        try:
            written = await self._dead_letters.write(state, message, reason=reason,
                                                     detail=detail, status=status,
                                                     logged=logged, route=route)
        except asyncio.CancelledError:  # the shutdown gave up on it: read again after it
            self._ended(state, message, parts, finished=False)
            raise
        self._ended(state, message, parts, finished=written)

    def _ended(self, state: PartitionState, message: Message, parts: Parts | None, *,
               finished: bool) -> None:
        self._settlement.ended(state, offset_of(message), parts, finished=finished)

    # ---- JobOwner ----------------------------------------------------------------------------

    def cancelled(self, job: Job) -> bool:
        state: PartitionState = job.context[0]
        return state.revoked

    def abandoned(self, job: Job) -> None:
        state, message, parts = job.context
        self._ended(state, message, parts, finished=False)

    def attempted(self, job: Job, result: Result, delay: float) -> None:
        """Nothing to persist: the uncommitted offset is what brings a message back."""

    async def finished(self, job: Job, verdict: Verdict, result: Result | None,
                       reason: str) -> None:
        state, message, parts = job.context
        if verdict is Verdict.DEAD_LETTER:
            detail = result.detail if result else ""
            await self._dead_letter(state, message, reason=reason, detail=detail, result=result,
                                    logged=True, parts=parts,
                                    route=job.route if job.shown_route else "")
        else:
            self._ended(state, message, parts, finished=True)
