"""The poll thread: the only caller of the ``confluent_kafka.Consumer``, rebalances included.

It consumes in batches and hands them to the event loop with ``call_soon_threadsafe``; it never
waits on HTTP, so the group heartbeat and ``max.poll.interval.ms`` are safe however slow ilert
is. Between polls it applies what the loop asked for: commit, pause partitions whose deliveries
back up (polling goes on, so the membership survives an ilert outage), resume them.

Commits (see :mod:`ilagent.kafka.commits`) carry the position and the map of finished offsets
above it; on assignment the map is read back, so the offsets it lists are skipped instead of
sent again. While messages are in delivery the thread polls with a short timeout, so that a
commit the loop asks for goes out within milliseconds (a commit made from another thread would
wait for ``consume()`` to return).

Rebalance callbacks run inside ``consume()`` on this thread. On revoke, the partition's
in-flight requests all finish or time out on the loop (the revoke waits at least
``--ilert_timeout``), then its position and map are committed synchronously before the callback
returns (retried while the group is busy rebalancing), a paused partition is resumed (librdkafka
keeps the application's pause flag across unassign and assign) and the partition is forgotten,
so the next owner never overtakes a request still on its way. A *lost* partition belongs to
another member already: nothing of it is sent any more, nothing is waited for, nothing committed.
At shutdown the final positions are committed synchronously while still a member — polling
between attempts lets a rebalance in progress finish — and only then is the group left. With
``auto.offset.reset=latest`` a new group's start position is committed at assignment (see
:meth:`~ilagent.kafka.commits.Committer.pinned_starts`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from ilagent import offsetmap
from ilagent.config import KafkaSettings
from ilagent.errors import ConfigError
from ilagent.kafka.commits import COMMIT_RETRY_DELAY, Committer
from ilagent.kafka.misconfig import HUNG_UP, explained, misconfiguration
from ilagent.kafka.partitions import Handoff, PartitionState, Snapshot, TPKey, names
from ilagent.kafka.runs import one_partition
from ilagent.kafka.settings import consumer_config, incremental
from ilagent.kafka.stats import GroupState, read_stats
from ilagent.metrics import Metrics
from ilagent.offsets import OffsetTracker

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
MAX_UNPROCESSED = 2 * BATCH_SIZE  # messages handed to the loop and not yet mapped
MAX_LOOP_WAIT = 1.0  # never wait longer than this for the loop: polling must go on
CLOSING_CHECK = 0.05  # how often that wait looks at `closing` (set without a wake-up)
POLL_TIMEOUT = 0.1
BUSY_POLL_TIMEOUT = 0.005  # while messages are in delivery, the longest wait between polls
# at start, errors are held back this long: a misconfiguration becomes the one-line exit
# instead of following a "brokers are down" warning; a slow cluster is only then reported
STARTUP_QUIET = 5.0
APIVERSION_HANGUPS = 3  # the broker hung up this often on the first request: not plain Kafka
REVOKE_COMMIT_TIMEOUT = 10.0  # how long a revoke keeps trying to commit
FINAL_COMMIT_TIMEOUT = 10.0  # how long the shutdown keeps trying (and polling) to commit

# runs of one partition's messages, in the order consumed (most batches are one run)
Batch = list[tuple[PartitionState, list[Message]]]
Drain = Callable[[list[PartitionState], bool], Coroutine[Any, Any, dict[TPKey, Snapshot]]]


class PollThread:
    """Owns the consumer on a thread of its own; talks to the loop through a :class:`Handoff`."""

    def __init__(
        self,
        *,
        settings: KafkaSettings,
        handoff: Handoff,
        metrics: Metrics,
        loop: asyncio.AbstractEventLoop,
        on_batch: Callable[[Batch], None],
        drain: Drain,
        on_pause: Callable[[PartitionState, bool, int], None],
    ) -> None:
        self._settings = settings
        self._handoff = handoff
        self._metrics = metrics
        self._loop = loop
        self._on_batch = on_batch
        self._drain = drain
        self._on_pause = on_pause
        self._config = consumer_config(settings)
        self._config["stats_cb"] = self._on_stats
        self._config["error_cb"] = self._on_error
        self._commits = Committer(metrics=metrics)
        self._config["on_commit"] = self._commits.on_commit
        self._thread: threading.Thread | None = None
        # owned by this thread (read elsewhere only for readiness)
        self.assigned: dict[TPKey, PartitionState] = {}
        self._paused: set[TPKey] = set()
        self.fetching = True
        self.closing = False
        self.exited = False
        self.last_error = ""
        self.group: GroupState | None = None  # from the last statistics report
        self.ever_ready = False  # was a group member with a broker connection at least once
        self.fatal = ""  # a misconfiguration found before the first good start: exit 2
        self.missing_topics: set[str] = set()  # subscribed, but not (yet) in the cluster
        self._started = time.monotonic()
        self._hangups = 0  # connections closed by the broker during the first request
        self.final: list[tuple[PartitionState, Snapshot]] = []  # set by the loop at shutdown
        self.final_timeout = FINAL_COMMIT_TIMEOUT

    def start(self) -> None:
        """Create the consumer and start polling; raises ``ConfigError`` for a property
        librdkafka refuses."""
        native = logging.getLogger("ilagent.librdkafka")
        native.setLevel(logging.INFO)  # _inspect_native sees connection failures at any -v
        native.addFilter(self._inspect_native)
        try:
            consumer = Consumer(self._config, logger=native)
        except (KafkaException, ValueError, TypeError) as exc:
            raise ConfigError(f"Kafka refused the configuration: {_reason(exc)}") from None
        self._thread = threading.Thread(target=self._run, args=(consumer,),
                                        name="kafka-poll", daemon=True)
        self._thread.start()

    def join(self) -> None:
        """Wait for the thread to end (after ``closing`` was set)."""
        if self._thread is not None:
            self._thread.join()

    def _inspect_native(self, record: logging.LogRecord) -> bool:
        """librdkafka's own log lines: spot a plaintext client on a TLS port, or a port that is
        no Kafka listener (the peer hangs up during the first request, which librdkafka reports
        only here); until the first good start, keep its warnings back (they repeat what
        error_cb reports, or what becomes the one-line exit)."""
        if not self.ever_ready:
            text = record.getMessage()
            if "Disconnected" in text and "APIVERSION_QUERY" in text:
                self._hangups += 1
                if self._hangups >= APIVERSION_HANGUPS and not self.fatal:
                    self.fatal = f"{HUNG_UP}: {text.split(']: ', 1)[-1]}"
            if record.levelno >= logging.WARNING:
                return False
        return record.levelno >= logging.getLogger().getEffectiveLevel()

    def _on_stats(self, raw: str) -> None:
        self.group = read_stats(self._metrics, raw) or self.group
        if self.group is not None:
            self.ever_ready = self.ever_ready or (self.group.member and self.group.brokers_up > 0)
            self.missing_topics -= self.group.topics

    def _on_error(self, error: KafkaError) -> None:
        """librdkafka's errors: kept for /ready, logged (repeats are summarised by the log)."""
        self.last_error = error.str()
        self._metrics.kafka_errors.labels(error.name()).inc()
        if error.code() == KafkaError._ALL_BROKERS_DOWN and self.group is not None:
            self.group = GroupState(member=self.group.member, brokers_up=0,
                                    group_state=self.group.group_state)
        problem = misconfiguration(error)
        if problem and not self.ever_ready:
            self.fatal = explained(error)
            return  # the daemon exits with it as its one line
        if not self.ever_ready and time.monotonic() - self._started < STARTUP_QUIET:
            return
        level = logging.ERROR if error.fatal() or problem else logging.WARNING
        logger.log(level, "Kafka: %s", error.str())

    def _run(self, consumer: Consumer) -> None:
        try:
            topics = list(self._settings.topics)
            consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke,
                               on_lost=self._on_lost)
            logger.info("subscribed to %s as group %s", ", ".join(topics),
                        self._settings.group_id)
            while not self.closing:
                self._apply_requests(consumer)
                self._wait_for_loop(consumer)
                # take what is queued at once; only wait (for the first message) when idle,
                # so a trickle of messages is never held back to fill a batch
                messages = consumer.consume(num_messages=BATCH_SIZE, timeout=0)
                if not messages:
                    # while messages are in delivery wait briefly: their commits go out with
                    # the next turn, and what finished and is not committed yet is what a
                    # crash sends again
                    messages = consumer.consume(
                        num_messages=1,
                        timeout=BUSY_POLL_TIMEOUT if self._handoff.busy else POLL_TIMEOUT)
                if messages:
                    self._hand_over(messages)
            self._apply_requests(consumer)
            self._commit_final(consumer)
        except Exception as exc:  # the thread must report, not vanish
            self.last_error = str(exc)
            logger.exception("Kafka poll thread failed")
        finally:
            with contextlib.suppress(Exception):
                consumer.close()
            self.exited = True
            logger.info("Kafka consumer closed")

    def _wait_for_loop(self, consumer: Consumer) -> None:
        """Let the event loop catch up with mapping before handing it more (a short wait,
        woken by the loop), committing meanwhile what it asks for at once.

        Pausing partitions for this would throw librdkafka's prefetched messages away; pausing
        is kept for deliveries that cannot finish (ilert slow or down), see _apply_requests.
        """
        deadline = time.monotonic() + MAX_LOOP_WAIT
        while self._handoff.unprocessed > MAX_UNPROCESSED and not self.closing:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            commits = self._handoff.wait_for_loop(MAX_UNPROCESSED, min(left, CLOSING_CHECK))
            self._commits.commit_async(consumer, commits, self.assigned)

    def _commit_final(self, consumer: Consumer) -> None:
        """Commit the positions the loop left in :attr:`final`, synchronously, while still a
        member; a rebalance in progress is polled through (every partition is paused, so no
        message comes) and the commit tried again for up to :attr:`final_timeout` s."""
        commits = [(state, snap) for state, snap in self.final
                   if self.assigned.get(state.key) is state]
        if not self._commits.commit_sync(consumer, commits, timeout=self.final_timeout,
                                         between=lambda: self._poll_idle(consumer)):
            logger.error("the final commit of %s failed; their next owner sends what was "
                         "delivered since the last commit again",
                         names([TopicPartition(*state.key) for state, _ in commits]))

    def _poll_idle(self, consumer: Consumer) -> None:
        """Poll once so that librdkafka can finish a rebalance; messages are not handed on
        (their partitions are paused; anything else is read again by its next owner)."""
        for message in consumer.consume(num_messages=BATCH_SIZE, timeout=COMMIT_RETRY_DELAY):
            if message.error() is None:
                logger.debug("not handing on %s[%s]@%s during shutdown", message.topic(),
                             message.partition(), message.offset())

    def _hand_over(self, messages: list[Message]) -> None:
        key = one_partition(messages)
        if key is None:
            batch = self._runs(messages)
        else:  # (a partition revoked inside this consume() is read again by its next owner)
            state = self.assigned.get(key)
            batch = [] if state is None else [(state, messages)]
        handed = sum(len(run) for _state, run in batch)
        if not handed:
            return
        self._handoff.handed(handed)
        self._loop.call_soon_threadsafe(self._on_batch, batch)

    def _runs(self, messages: list[Message]) -> Batch:
        """A batch of more than one partition, or with errors: its runs, errors reported."""
        batch: Batch = []
        run: list[Message] | None = None
        run_key: TPKey | None = None
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART and message.topic():
                    self.missing_topics.add(str(message.topic()))
                if error.code() != KafkaError._PARTITION_EOF:
                    self.last_error = error.str()
                    logger.warning("Kafka: %s", error.str())
                continue
            key = (str(message.topic()), int(message.partition() or 0))
            if key != run_key:
                run_key, state, run = key, self.assigned.get(key), None
                if state is not None:  # else revoked inside this consume(): read again later
                    run = []
                    batch.append((state, run))
            if run is not None:
                run.append(message)
        return batch

    def _apply_requests(self, consumer: Consumer) -> None:
        to_commit, outstanding = self._handoff.take()
        self._commits.commit_async(consumer, to_commit, self.assigned)
        high = self._settings.max_buffered
        for key in self.assigned:
            count = outstanding.get(key, 0)
            want_paused = not self.fetching or count >= high
            if want_paused and key not in self._paused:
                consumer.pause([TopicPartition(*key)])
                self._paused.add(key)
                if self.fetching:
                    self._loop.call_soon_threadsafe(self._on_pause, self.assigned[key], True,
                                                    count)
            elif not want_paused and key in self._paused and count <= high // 2:
                consumer.resume([TopicPartition(*key)])
                self._paused.discard(key)
                self._loop.call_soon_threadsafe(self._on_pause, self.assigned[key], False,
                                                count)
        self._metrics.paused_partitions.set(len(self._paused))

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        committed = self._commits.committed(consumer, partitions)
        starts = (self._commits.pinned_starts(consumer, partitions, committed)
                  if self._settings.offset_reset == "latest" else partitions)
        if incremental(self._config):
            consumer.incremental_assign(starts)
        else:
            consumer.assign(starts)
        if not self.fetching:  # assigned during the shutdown: nothing more is fetched
            consumer.pause(partitions)
        restored = []
        # only now: /ready must not say "assigned" before the start position is durable
        for tp in partitions:
            state = PartitionState(tp.topic, tp.partition)
            start = committed.get(state.key)
            ranges = offsetmap.decode(start.metadata, start.offset) if start is not None else []
            if start is not None and ranges:
                state.tracker = OffsetTracker(ranges)
                state.restored_until = ranges[-1][1]
                skipped = sum(end - begin for begin, end in ranges)
                restored.append(f"{tp.topic}[{tp.partition}]: {skipped} above {start.offset}")
            self.assigned[state.key] = state
            if not self.fetching:
                self._paused.add(state.key)
        self._metrics.rebalances.labels("assign").inc()
        logger.info("assigned %s", names(partitions))
        if restored:
            logger.info("finished before, not sent again: %s", ", ".join(restored))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._release(consumer, partitions, commit=True)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._release(consumer, partitions, commit=False)

    def _release(self, consumer: Consumer, partitions: list[TopicPartition], *,
                 commit: bool) -> None:
        """Withdraw partitions: drain their in-flight deliveries, commit what is finished
        (position and map), resume them if they were paused, forget them."""
        states = [s for tp in partitions
                  if (s := self.assigned.get((tp.topic, tp.partition))) is not None]
        self._metrics.rebalances.labels("revoke" if commit else "lost").inc()
        future = asyncio.run_coroutine_threadsafe(self._drain(states, commit), self._loop)
        snapshots: dict[TPKey, Snapshot] = {}
        try:
            snapshots = future.result(self._settings.revoke_timeout + 5)
        except Exception as exc:
            logger.warning("draining revoked partitions failed: %s", exc)
        if commit:
            commits = [(state, snapshots[state.key]) for state in states
                       if state.key in snapshots]
            # inside the callback nothing can be polled: the group finishes its step meanwhile
            if not self._commits.commit_sync(consumer, commits, timeout=REVOKE_COMMIT_TIMEOUT,
                                             between=lambda: time.sleep(COMMIT_RETRY_DELAY)):
                logger.error("the commit of revoked %s failed; their next owner sends what "
                             "was delivered since the last commit again", names(partitions))
        for state in states:
            if state.key in self._paused:
                # librdkafka keeps the application's pause flag across unassign and assign:
                # a partition paused now would stay paused when it comes back to this member
                with contextlib.suppress(KafkaException):
                    consumer.resume([TopicPartition(*state.key)])
                self._paused.discard(state.key)
            self.assigned.pop(state.key, None)
            self._commits.forget(state.key)
            self._handoff.forget(state.key)
            with contextlib.suppress(KeyError):
                self._metrics.consumer_lag.remove(state.topic, str(state.partition))
        self._metrics.paused_partitions.set(len(self._paused))
        logger.info("%s %s", "revoked" if commit else "lost", names(partitions))


def _reason(exc: Exception) -> str:
    """librdkafka's own words for a refused configuration, without the exception's wrapping."""
    error = exc.args[0] if exc.args else exc
    text = error.str() if isinstance(error, KafkaError) else str(error)
    return text.strip()
