"""Offset commits of the Kafka source: when and what to commit (loop side), and how (poll thread).

Offsets are committed by us, never by librdkafka's auto-commit, which sends a partition only
once its position moved: each commit carries the map of finished offsets above the position
(:mod:`ilagent.offsetmap`), and that map must reach the broker even while one stuck message
holds the position.

* :class:`CommitRounds` (event loop): when something of a partition finished, its position and
  map are handed to the poll thread — at most four times a second, or every 10 ms while the
  partition drains a backlog at full speed (see the class).
* :class:`Committer` (poll thread): sends them asynchronously (a failed one is made again a
  moment later unless a newer one replaced it); commits synchronously on revoke and at
  shutdown, trying again while the group is rebalancing; reads the committed positions and
  maps back at assignment; and, for ``auto.offset.reset=latest``, pins a new group's start
  position. (The loop cannot commit through the consumer itself: a commit made from another
  thread waits until the poll thread's ``consume()`` returns.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from ilagent import offsetmap
from ilagent.kafka.partitions import Commit, Handoff, PartitionState, Snapshot, TPKey, names
from ilagent.metrics import Metrics

logger = logging.getLogger(__name__)

COMMIT_INTERVAL = 0.25  # a partition where little finishes: at most 4 commits a second
BUSY_FINISHED = 20  # finished since its last commit: the partition is draining a backlog
BUSY_INTERVAL = 0.01  # then it is committed this often
COMMIT_RETRY_DELAY = 0.1
COMMIT_AGAIN_AFTER = 1.0  # a failed asynchronous commit is made again after this long
# a synchronous commit refused for these is tried again: the group is rebalancing or moving
RETRIABLE_COMMIT = frozenset({
    KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR, KafkaError.REQUEST_TIMED_OUT, KafkaError._TIMED_OUT,
    KafkaError._WAIT_COORD, KafkaError._TRANSPORT,
})


class CommitRounds:
    """On the event loop: commits each partition whose offsets changed, asynchronously.

    A partition is committed at most every :data:`COMMIT_INTERVAL` seconds (four times a
    second) while little finishes there. When :data:`BUSY_FINISHED` or more of its messages
    finished since its last commit — a backlog drained at full speed — it is committed every
    :data:`BUSY_INTERVAL` seconds instead: what a crash costs is what finished since the last
    commit, and at thousands of events a second a quarter of a second is a thousand events sent
    twice. At ilert's own rate limits (700 events a minute per address) a partition never gets
    that busy, so the quiet cadence is the one that runs in production.
    """

    def __init__(self, handoff: Handoff, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._handoff = handoff
        # the wall's monotonic clock, not the loop's: uvloop's is read once per turn of the
        # loop, and a busy turn is exactly when a stale reading would hold commits back
        self._clock = clock
        self._dirty: set[PartitionState] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._when = 0.0  # clock time the timer fires at

    def changed(self, state: PartitionState) -> None:
        """Something of the partition finished: commit it now if it is due, else when it is.

        Due now is committed right here rather than by the timer: while the loop is busy, one
        of its turns can take tens of milliseconds and a timer fires that much late — every
        event finished meanwhile would be sent again after a crash.
        """
        if state.revoked:
            return
        state.finished_since += 1
        due = self._due(state)
        now = self._clock()
        if due <= now:
            self._dirty.discard(state)
            self._commit(state, now)
            return
        self._dirty.add(state)
        self._schedule(due)

    def forget(self, state: PartitionState) -> None:
        """The partition is being released: its commit is made by the revoke itself."""
        self._dirty.discard(state)

    @staticmethod
    def _due(state: PartitionState) -> float:
        busy = state.finished_since >= BUSY_FINISHED
        return state.last_commit + (BUSY_INTERVAL if busy else COMMIT_INTERVAL)

    def _schedule(self, when: float) -> None:
        if self._timer is not None:
            if self._when <= when:
                return
            self._timer.cancel()
        now = self._clock()
        self._when = max(when, now)
        self._timer = asyncio.get_running_loop().call_later(self._when - now, self._round)

    def _round(self) -> None:
        self._timer = None
        later = self.round(self._clock())
        if later is not None:
            self._schedule(later)

    def round(self, now: float) -> float | None:
        """Commit every changed partition that is due at clock time ``now``; when the next one
        is due (None: none waits)."""
        later: float | None = None
        for state in list(self._dirty):
            if state.revoked:
                self._dirty.discard(state)
                continue
            due = self._due(state)
            if due > now:
                later = due if later is None else min(later, due)
                continue
            self._dirty.discard(state)
            self._commit(state, now)
        return later

    def _commit(self, state: PartitionState, now: float) -> None:
        """Hand the partition's position and map to the poll thread, unless already sent."""
        state.last_commit, state.finished_since = now, 0
        snapshot = state.snapshot()
        if snapshot is not None and snapshot != state.sent:
            state.sent = snapshot
            self._handoff.commit(state, snapshot)


class Committer:
    """On the poll thread: every commit of the consumer."""

    def __init__(self, *, metrics: Metrics) -> None:
        self._metrics = metrics
        # the last asynchronous commit of each partition, to make it again if it fails
        self._made: dict[TPKey, Commit] = {}
        # commits that failed, to be made again after a moment unless a newer one replaces them
        self._again: dict[TPKey, tuple[Commit, float]] = {}
        # the last synchronous commit of each partition: the revoke at close repeats the final
        self._synced: dict[TPKey, Commit] = {}

    def forget(self, key: TPKey) -> None:
        """The partition was released."""
        self._made.pop(key, None)
        self._again.pop(key, None)
        self._synced.pop(key, None)

    def commit_async(self, consumer: Consumer, requested: dict[TPKey, Commit],
                     assigned: dict[TPKey, PartitionState]) -> None:
        """Send the requested commits of partitions still assigned (and failed ones again)."""
        if self._again:
            now = time.monotonic()
            for key, (made, due) in list(self._again.items()):
                if key in requested:  # a newer commit replaces the failed one
                    del self._again[key]
                elif due <= now:
                    del self._again[key]
                    requested[key] = made
        commits = [(state, snap) for key, (state, snap) in requested.items()
                   if assigned.get(key) is state]
        if not commits:
            return
        try:
            consumer.commit(offsets=[_partition(state, snap) for state, snap in commits],
                            asynchronous=True)
        except KafkaException as exc:  # no coordinator yet: made again in a moment
            logger.debug("could not commit: %s", exc)
            due = time.monotonic() + COMMIT_AGAIN_AFTER
            for state, snap in commits:
                self._again[state.key] = ((state, snap), due)
            return
        for state, snap in commits:
            self._made[state.key] = (state, snap)

    def on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """librdkafka's ``on_commit``: the result of a commit (served inside ``consume()``)."""
        failed = [tp for tp in partitions if tp.error is not None]
        if error is None and not failed:
            return
        self._metrics.commit_failures.inc()
        reason = error if error is not None else failed[0].error
        for tp in failed or partitions:
            key = (tp.topic, tp.partition)
            made = self._made.get(key)
            if made is not None and made[1][0] == tp.offset:  # not overtaken by a newer one
                del self._made[key]
                self._again[key] = (made, time.monotonic() + COMMIT_AGAIN_AFTER)
        logger.warning("Kafka commit of %s failed: %s (trying again)",
                       names(failed or partitions), reason.str() if reason else "unknown")

    def commit_sync(self, consumer: Consumer, commits: list[Commit], *, timeout: float,
                    between: Callable[[], None]) -> bool:
        """Commit synchronously; a refusal for a rebalance or a moving coordinator is tried
        again for up to ``timeout`` s, calling ``between`` before each new try. True once done
        (or when there was nothing new to commit)."""
        commits = [commit for commit in commits if self._synced.get(commit[0].key) != commit]
        if not commits:
            return True
        offsets = [_partition(state, snap) for state, snap in commits]
        deadline = time.monotonic() + timeout
        while True:
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                code = error.code() if isinstance(error, KafkaError) else None
                if code not in RETRIABLE_COMMIT or time.monotonic() >= deadline:
                    self._metrics.commit_failures.inc()
                    logger.warning("Kafka commit of %s failed: %s", names(offsets), exc)
                    return False
                logger.info("Kafka commit of %s refused (%s); trying again", names(offsets),
                            error.name() if isinstance(error, KafkaError) else exc)
                between()
                continue
            for state, snap in commits:
                self._synced[state.key] = (state, snap)
            return True

    @staticmethod
    def committed(consumer: Consumer, partitions: list[TopicPartition]
                  ) -> dict[TPKey, TopicPartition]:
        """The committed position (with its metadata) of each partition that has one; none
        when they cannot be read (then the group's position stands and nothing is skipped)."""
        try:
            answer = consumer.committed(partitions, timeout=10)
        except KafkaException as exc:
            logger.warning("could not read committed offsets of %s: %s", names(partitions), exc)
            return {}
        committed = {}
        for tp in answer:
            if tp.error is not None:
                logger.warning("could not read the committed offset of %s[%d]: %s", tp.topic,
                               tp.partition, tp.error)
            else:
                committed[(tp.topic, tp.partition)] = tp
        return committed

    @staticmethod
    def pinned_starts(consumer: Consumer, partitions: list[TopicPartition],
                      committed: dict[TPKey, TopicPartition]) -> list[TopicPartition]:
        """Start positions that make "latest" durable for partitions the group never committed.

        A new group starting at "latest" that dies before its first commit would start at
        "latest" again on restart and skip every message produced in between; so the end of
        such a partition is committed at once and consumption starts exactly there. A partition
        whose committed offset could not be read is never pinned: the group's position stands.
        """
        starts, pins = [], []
        for tp in partitions:
            known = committed.get((tp.topic, tp.partition))
            if known is None or known.offset >= 0:
                starts.append(TopicPartition(tp.topic, tp.partition))
                continue
            try:
                _low, high = consumer.get_watermark_offsets(tp, timeout=10)
            except KafkaException as exc:
                logger.warning("could not read the end of %s[%d]: %s", tp.topic, tp.partition,
                               exc)
                starts.append(TopicPartition(tp.topic, tp.partition))
                continue
            starts.append(TopicPartition(tp.topic, tp.partition, high))
            pins.append(TopicPartition(tp.topic, tp.partition, high,
                                       metadata=offsetmap.encode(high, [])))
        if pins:
            try:
                consumer.commit(offsets=pins, asynchronous=False)
                logger.info("new group starts at %s",
                            ", ".join(f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in pins))
            except KafkaException as exc:
                logger.warning("could not commit the start position: %s", exc)
        return starts


def _partition(state: PartitionState, snapshot: Snapshot) -> TopicPartition:
    """The commit of one partition: its position with the finished-offset map as metadata."""
    position, metadata = snapshot
    return TopicPartition(state.topic, state.partition, position, metadata=metadata)
