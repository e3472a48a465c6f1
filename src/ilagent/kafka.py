"""Kafka consumption: one thread owns the ``confluent_kafka.Consumer``; the event loop delivers.

The poll thread is the only one that calls the consumer (consume, pause/resume, store, commit,
close), so rebalance callbacks run there too. It hands batches of messages to the event loop
with ``call_soon_threadsafe`` and never waits on HTTP, so the group heartbeat and
``max.poll.interval.ms`` are safe however slow ilert is. The loop maps each message, submits
events to the :class:`~ilagent.delivery.Deliverer` and reports finished offsets back.

Offsets follow librdkafka's at-least-once idiom: auto-commit on, auto offset store off, and
``store_offsets`` only for each partition's contiguous watermark (the first unfinished offset),
so a crash never skips a message that was not delivered, filtered or dead-lettered.
On revoke and at close the watermark is committed synchronously.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from ilagent import __version__
from ilagent.backoff import RetryPolicy
from ilagent.delivery import Deliverer, Job, Verdict
from ilagent.ilert import Result
from ilagent.logs import mask
from ilagent.mapping import Dropped, Mapped, MappingRules, heartbeat_key, map_message
from ilagent.metrics import Metrics
from ilagent.offsets import OffsetTracker

logger = logging.getLogger(__name__)

SOURCE = "kafka"
BATCH_SIZE = 1000
MAX_UNPROCESSED = 2 * BATCH_SIZE  # messages handed to the loop and not yet mapped
MAX_LOOP_WAIT = 1.0  # never wait longer than this for the loop: polling must go on
POLL_TIMEOUT = 0.1
DLQ_FLUSH_TIMEOUT = 10.0

TPKey = tuple[str, int]


@dataclass(frozen=True)
class KafkaSettings:
    """What the bridge consumes and how (from the ``daemon`` flags)."""

    brokers: str
    group_id: str = "ilagent"
    event_topics: tuple[str, ...] = ()
    heartbeat_topics: tuple[str, ...] = ()
    offset_reset: str = "latest"
    extra: tuple[tuple[str, str], ...] = ()  # --kafka_config KEY=VALUE, applied last
    dlq_topic: str | None = None
    max_buffered: int = 2000  # per partition; above it the partition is paused
    revoke_timeout: float = 10.0

    def consumer_config(self) -> dict[str, Any]:
        """librdkafka settings; user ``--kafka_config`` entries override ours."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.brokers,
            "group.id": self.group_id,
            "client.id": f"ilagent-py-{__version__}",
            "enable.auto.commit": True,
            "enable.auto.offset.store": False,
            # stored watermarks reach the broker within 250 ms: fewer duplicates after a crash
            "auto.commit.interval.ms": 250,
            "auto.offset.reset": self.offset_reset,
            "enable.partition.eof": False,
            "session.timeout.ms": 6000,
            "partition.assignment.strategy": "cooperative-sticky",
            "queued.max.messages.kbytes": 16384,
            "statistics.interval.ms": 5000,
        }
        config.update(dict(self.extra))
        return config

    def producer_config(self) -> dict[str, Any]:
        """Settings of the dead-letter producer: the same cluster and security options."""
        consumer_only = {"group.id", "enable.auto.commit", "enable.auto.offset.store",
                         "auto.commit.interval.ms", "auto.offset.reset", "enable.partition.eof",
                         "session.timeout.ms", "partition.assignment.strategy",
                         "queued.max.messages.kbytes", "statistics.interval.ms",
                         "max.poll.interval.ms", "group.instance.id", "fetch.min.bytes",
                         "fetch.max.bytes", "max.partition.fetch.bytes", "group.protocol",
                         "isolation.level", "heartbeat.interval.ms"}
        config = {k: v for k, v in self.consumer_config().items() if k not in consumer_only}
        config.update({"acks": "all", "enable.idempotence": True, "linger.ms": 5})
        return config


@dataclass(eq=False)
class PartitionState:
    """One assignment of one partition; a new object each time it is assigned."""

    topic: str
    partition: int
    tracker: OffsetTracker = field(default_factory=OffsetTracker)
    revoked: bool = False
    live: int = 0  # messages handed to the loop and not yet finished or abandoned
    drained: asyncio.Event | None = None

    @property
    def key(self) -> TPKey:
        return (self.topic, self.partition)


def lane_for(mapped: Mapped, message_key: bytes | None) -> Hashable | None:
    """Events of one alert keep their order; else those of one Kafka key; else none."""
    alert_key = mapped.alert_key
    if alert_key:
        # ilert matches alert keys case-insensitively after trimming
        return ("alert", mapped.integration_key, alert_key.strip().lower())
    if message_key:
        return ("key", message_key)
    return None


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
        self._policy = policy
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # shared between the poll thread and the loop, guarded by _lock
        self._to_store: dict[TPKey, tuple[PartitionState, int]] = {}
        self._outstanding: dict[TPKey, int] = {}  # messages in delivery, per partition
        self._unprocessed = 0  # messages handed to the loop and not yet mapped
        # owned by the poll thread (read elsewhere only for readiness)
        self._assigned: dict[TPKey, PartitionState] = {}
        self._paused: set[TPKey] = set()
        self._fetching = True
        self._closing = False
        self._producer: Producer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.last_error = ""
        self.exited = False
        self._event_topics = frozenset(settings.event_topics)
        self._heartbeat_topics = frozenset(settings.heartbeat_topics)
        self._consumed = metrics.consumed.labels(SOURCE)
        self._filtered = metrics.filtered.labels(SOURCE)

    # ---- life cycle (called on the loop) -------------------------------------------------

    def start(self) -> None:
        """Create the consumer and start the poll thread."""
        self._loop = asyncio.get_running_loop()
        if self.settings.dlq_topic:
            self._producer = Producer(self.settings.producer_config())
        config = self.settings.consumer_config()
        config["stats_cb"] = self.record_stats
        consumer = Consumer(config, logger=logging.getLogger("ilagent.librdkafka"))
        self._thread = threading.Thread(target=self._run, args=(consumer,),
                                        name="kafka-poll", daemon=True)
        self._thread.start()

    @property
    def ready(self) -> bool:
        """True when the consumer joined its group and holds at least one partition."""
        return bool(self._assigned) and not self.exited

    def readiness(self) -> dict[str, Any]:
        """Why the bridge is (not) ready, for ``/ready``."""
        return {"component": "kafka", "assigned_partitions": len(self._assigned),
                "worker_exited": self.exited, "error": self.last_error}

    def stop_fetching(self) -> None:
        """Stop handing out new messages (shutdown step one); polling goes on."""
        self._fetching = False

    async def close(self) -> None:
        """Commit the watermarks, leave the group and end the poll thread."""
        self._closing = True
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._producer is not None:
            await asyncio.to_thread(self._producer.flush, DLQ_FLUSH_TIMEOUT)

    # ---- poll thread -----------------------------------------------------------------------

    def _run(self, consumer: Consumer) -> None:
        try:
            topics = [*self.settings.event_topics, *self.settings.heartbeat_topics]
            consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke,
                               on_lost=self._on_lost)
            logger.info("subscribed to %s as group %s", ", ".join(topics),
                        self.settings.group_id)
            while not self._closing:
                self._apply_requests(consumer)
                self._wait_for_loop()
                # take what is queued at once; only wait (for the first message) when idle,
                # so a trickle of messages is never held back to fill a batch
                messages = consumer.consume(num_messages=BATCH_SIZE, timeout=0)
                if not messages:
                    messages = consumer.consume(num_messages=1, timeout=POLL_TIMEOUT)
                if messages:
                    self._hand_over(messages)
            self._apply_requests(consumer)
            self._commit_watermarks(consumer)
        except Exception as exc:  # the thread must report, not vanish
            self.last_error = str(exc)
            logger.exception("Kafka poll thread failed")
        finally:
            with contextlib.suppress(Exception):
                consumer.close()
            self.exited = True
            logger.info("Kafka consumer closed")

    def _wait_for_loop(self) -> None:
        """Let the event loop catch up with mapping before handing it more (a short wait).

        Pausing partitions for this would throw librdkafka's prefetched messages away; pausing
        is kept for deliveries that cannot finish (ilert slow or down), see _apply_requests.
        """
        deadline = time.monotonic() + MAX_LOOP_WAIT
        while (self._unprocessed > MAX_UNPROCESSED and not self._closing
               and time.monotonic() < deadline):
            time.sleep(0.002)

    def _commit_watermarks(self, consumer: Consumer) -> None:
        """Commit every assigned partition's watermark now (never a consumed position)."""
        offsets = [TopicPartition(state.topic, state.partition, watermark)
                   for state in list(self._assigned.values())
                   if (watermark := state.tracker.watermark()) is not None]
        if offsets:
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                logger.warning("final commit failed: %s", exc)

    def _hand_over(self, messages: list[Message]) -> None:
        batch: list[tuple[PartitionState, Message]] = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    self.last_error = error.str()
                    logger.warning("Kafka: %s", error.str())
                continue
            key = (str(message.topic()), int(message.partition() or 0))
            state = self._assigned.get(key)
            if state is None:  # revoked inside this consume(); the next owner reads it again
                continue
            batch.append((state, message))
        if not batch:
            return
        with self._lock:
            self._unprocessed += len(batch)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._on_batch, batch)

    def _apply_requests(self, consumer: Consumer) -> None:
        with self._lock:
            to_store, self._to_store = self._to_store, {}
            outstanding = dict(self._outstanding)
        offsets = [TopicPartition(state.topic, state.partition, offset)
                   for key, (state, offset) in to_store.items()
                   if self._assigned.get(key) is state]
        if offsets:
            try:
                consumer.store_offsets(offsets=offsets)
            except KafkaException as exc:  # lost the partition meanwhile: the next owner redoes
                logger.debug("could not store offsets: %s", exc)
        high = self.settings.max_buffered
        for key in self._assigned:
            count = outstanding.get(key, 0)
            want_paused = not self._fetching or count >= high
            if want_paused and key not in self._paused:
                consumer.pause([TopicPartition(*key)])
                self._paused.add(key)
                if self._fetching:
                    logger.info("paused %s[%d]: %d messages buffered", *key, count)
            elif not want_paused and key in self._paused and count <= high // 2:
                consumer.resume([TopicPartition(*key)])
                self._paused.discard(key)
                logger.info("resumed %s[%d]", *key)
        self._metrics.paused_partitions.set(len(self._paused))

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self.settings.offset_reset == "latest":
            starts = self._pinned_starts(consumer, partitions)
            config = self.settings.consumer_config()
            if "cooperative" in str(config.get("partition.assignment.strategy", "")) \
                    or config.get("group.protocol") == "consumer":
                consumer.incremental_assign(starts)
            else:
                consumer.assign(starts)
        # only now: /ready must not say "assigned" before the start position is durable
        for tp in partitions:
            self._assigned[(tp.topic, tp.partition)] = PartitionState(tp.topic, tp.partition)
        self._metrics.rebalances.labels("assign").inc()
        logger.info("assigned %s", _names(partitions))

    def _pinned_starts(self, consumer: Consumer,
                       partitions: list[TopicPartition]) -> list[TopicPartition]:
        """Start positions that make "latest" durable for partitions the group never committed.

        A new group starting at "latest" that dies before its first commit would start at
        "latest" again on restart and skip every message produced in between; so the end of
        such a partition is committed at once and consumption starts exactly there.
        """
        try:
            committed = consumer.committed(partitions, timeout=10)
        except KafkaException as exc:
            logger.warning("could not read committed offsets of %s: %s", _names(partitions), exc)
            return partitions
        starts, pins = [], []
        for tp in committed:
            if tp.offset >= 0:
                starts.append(TopicPartition(tp.topic, tp.partition))
                continue
            try:
                _low, high = consumer.get_watermark_offsets(tp, timeout=10)
            except KafkaException as exc:
                logger.warning("could not read the end of %s[%d]: %s", tp.topic, tp.partition,
                               exc)
                starts.append(TopicPartition(tp.topic, tp.partition))
                continue
            pin = TopicPartition(tp.topic, tp.partition, high)
            starts.append(pin)
            pins.append(pin)
        if pins:
            try:
                consumer.commit(offsets=pins, asynchronous=False)
                logger.info("new group starts at %s",
                            ", ".join(f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in pins))
            except KafkaException as exc:
                logger.warning("could not commit the start position: %s", exc)
        return starts

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._release(consumer, partitions, commit=True)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._release(consumer, partitions, commit=False)

    def _release(self, consumer: Consumer, partitions: list[TopicPartition], *,
                 commit: bool) -> None:
        """Withdraw partitions: drain their in-flight deliveries, then commit their watermark."""
        states = [s for tp in partitions
                  if (s := self._assigned.get((tp.topic, tp.partition))) is not None]
        self._metrics.rebalances.labels("revoke" if commit else "lost").inc()
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self._drain(states), self._loop)
        try:
            future.result(self.settings.revoke_timeout + 5)
        except Exception as exc:
            logger.warning("draining revoked partitions failed: %s", exc)
        offsets = []
        for state in states:
            self._assigned.pop(state.key, None)
            self._paused.discard(state.key)
            with self._lock:
                self._outstanding.pop(state.key, None)
                self._to_store.pop(state.key, None)
            watermark = state.tracker.watermark()
            if watermark is not None:
                offsets.append(TopicPartition(state.topic, state.partition, watermark))
        if commit and offsets:
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                logger.warning("commit on revoke failed: %s", exc)
        logger.info("%s %s", "revoked" if commit else "lost", _names(partitions))

    # ---- event loop ------------------------------------------------------------------------

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

    def _on_batch(self, batch: list[tuple[PartitionState, Message]]) -> None:
        rules, deliverer = self._rules, self._deliverer
        with self._lock:
            self._unprocessed -= len(batch)
        done: dict[TPKey, PartitionState] = {}  # partitions with messages finished right here
        started: dict[TPKey, list[Any]] = {}  # messages that went on to delivery, per partition
        filtered = 0
        consumed = 0
        for state, message in batch:
            if state.revoked:  # never started; the partition's next owner reads it again
                continue
            consumed += 1
            offset = _offset(message)
            topic = state.topic
            if topic in self._event_topics:
                outcome = map_message(rules, message.value(), topic=topic,
                                      message_key=message.key())
                if isinstance(outcome, Mapped):
                    for warning in outcome.warnings:
                        logger.warning("%s: %s", _origin(message), warning)
                    state.tracker.add(offset)
                    state.live += 1
                    started.setdefault(state.key, [state, 0])[1] += 1
                    deliverer.submit(Job(
                        owner=self, source=SOURCE, lane=lane_for(outcome, message.key()),
                        integration_key=outcome.integration_key, path=outcome.path,
                        event=outcome.event, origin=_origin(message),
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
                    owner=self, source=SOURCE, lane=("heartbeat", key), integration_key=key,
                    origin=_origin(message), context=(state, message)))
        if consumed:
            self._consumed.inc(consumed)
        if filtered:
            self._filtered.inc(filtered)
        if done or started:
            self._settle(done.values(), started.values())

    def _settle(self, done: Iterable[PartitionState], started: Iterable[list[Any]]) -> None:
        """After a batch: count the messages now in delivery, store advanced watermarks."""
        with self._lock:
            for state, count in started:
                if not state.revoked:
                    self._outstanding[state.key] = self._outstanding.get(state.key, 0) + count
            for state in done:
                watermark = state.tracker.watermark()
                if watermark is not None and not state.revoked:
                    self._to_store[state.key] = (state, watermark)

    def _reject(self, state: PartitionState, message: Message, dropped: Dropped | None) -> None:
        reason = dropped.reason.value if dropped else "invalid_heartbeat"
        detail = dropped.detail if dropped else 'expected {"integrationKey": "<key>"}'
        self._metrics.dead_lettered.labels(SOURCE, reason).inc()
        task = asyncio.get_running_loop().create_task(
            self._dead_letter(state, message, reason=reason, detail=detail, result=None))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _finish(self, state: PartitionState, offset: int) -> None:
        state.tracker.finish(offset)
        self._release_one(state)
        if not state.revoked:
            watermark = state.tracker.watermark()
            if watermark is not None:
                with self._lock:
                    self._to_store[state.key] = (state, watermark)

    def _release_one(self, state: PartitionState) -> None:
        with self._lock:
            if state.key in self._outstanding:
                self._outstanding[state.key] -= 1
        state.live -= 1
        if state.revoked and state.live == 0 and state.drained is not None:
            state.drained.set()

    # ---- JobOwner --------------------------------------------------------------------------

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
            self._finish(state, _offset(message))

    async def _dead_letter(self, state: PartitionState, message: Message, *, reason: str,
                           detail: str, result: Result | None) -> None:
        """Store an undeliverable message (DLQ topic, else an ERROR log), then finish it."""
        status = result.status_label if result else ""
        where = _origin(message)
        if self._producer is None:
            logger.error("dead letter %s: %s %s %s (no --dlq_topic; message dropped)",
                         where, reason, status, detail)
            self._finish(state, _offset(message))
            return
        headers: list[tuple[str, str | bytes | None]] = [
            ("ilagent.reason", reason.encode()),
            ("ilagent.detail", mask(detail)[:500].encode()),
            ("ilagent.http_status", status.encode()),
            ("ilagent.source.topic", state.topic.encode()),
            ("ilagent.source.partition", str(message.partition()).encode()),
            ("ilagent.source.offset", str(message.offset()).encode()),
            *(message.headers() or []),
        ]
        attempt = 0
        while not state.revoked:
            attempt += 1
            error = await asyncio.to_thread(self._produce_dead_letter, message, headers)
            if error is None:
                logger.warning("dead-lettered %s to %s: %s %s", where, self.settings.dlq_topic,
                               reason, status)
                self._finish(state, _offset(message))
                return
            delay = self._policy.delay(attempt)
            logger.error("could not write %s to the DLQ topic (%s); retrying in %.1f s",
                         where, error, delay)
            await asyncio.sleep(delay)
        self._release_one(state)

    def _produce_dead_letter(self, message: Message,
                             headers: list[tuple[str, str | bytes | None]]) -> str | None:
        assert self._producer is not None and self.settings.dlq_topic is not None
        errors: list[str] = []

        def on_delivery(error: KafkaError | None, _msg: Message) -> None:
            if error is not None:
                errors.append(error.str())

        try:
            self._producer.produce(self.settings.dlq_topic, value=message.value(),
                                   key=message.key(), headers=headers, on_delivery=on_delivery)
        except (KafkaException, BufferError) as exc:
            return str(exc)
        if self._producer.flush(DLQ_FLUSH_TIMEOUT) > 0:
            return "timed out"
        return errors[0] if errors else None

    def record_stats(self, raw: str) -> None:
        """librdkafka statistics callback: consumer lag per assigned partition."""
        with contextlib.suppress(ValueError, KeyError, TypeError):
            stats = json.loads(raw)
            for topic, info in stats.get("topics", {}).items():
                for partition, pstats in info.get("partitions", {}).items():
                    lag = pstats.get("consumer_lag", -1)
                    if partition != "-1" and lag >= 0:
                        self._metrics.consumer_lag.labels(topic, partition).set(lag)


def _offset(message: Message) -> int:
    offset = message.offset()
    assert offset is not None, "consumed messages have offsets"
    return offset


def _origin(message: Message) -> str:
    return f"{message.topic()}[{message.partition()}]@{message.offset()}"


def _names(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"
