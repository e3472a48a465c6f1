"""Per-partition state, and the hand-off between the poll thread and the event loop.

A :class:`PartitionState` lives for one assignment of one partition; the loop tracks its
offsets there. :class:`Handoff` is everything the two threads tell each other, behind one lock:
commits to make (position and finished-offset map) and messages in delivery per partition
(loop → thread), messages handed over and not yet mapped (thread → loop).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message, TopicPartition

from ilagent import offsetmap
from ilagent.delivery.stuck import Head
from ilagent.offsets import OffsetTracker

TPKey = tuple[str, int]
Snapshot = tuple[int, str]  # commit position, metadata (the finished-offset map)


@dataclass(eq=False)
class PartitionState:
    """One assignment of one partition; a new object each time it is assigned."""

    topic: str
    partition: int
    tracker: OffsetTracker = field(default_factory=OffsetTracker)
    revoked: bool = False
    live: int = 0  # messages handed to the loop and not yet finished or abandoned
    drained: asyncio.Event | None = None
    # offset → the job of each message in delivery, to name what holds a pause or is stuck
    waiting: dict[int, Any] = field(default_factory=dict)
    held_by: str | None = None  # the masked key the held-back gauge names while paused
    restored_until: int = 0  # below this, the committed metadata may list finished offsets
    sent: Snapshot | None = None  # the last commit handed to the poll thread (loop side)
    last_commit: float = 0.0  # monotonic time of that commit
    finished_since: int = 0  # messages finished since then

    @property
    def key(self) -> TPKey:
        return (self.topic, self.partition)

    def snapshot(self) -> Snapshot | None:
        """What to commit now: the watermark and the map of finished offsets above it."""
        position = self.tracker.watermark()
        if position is None:
            return None
        return position, offsetmap.encode(position, self.tracker.finished_above())


Commit = tuple[PartitionState, Snapshot]  # what the loop asks the poll thread to commit


class Handoff:
    """The state both threads touch; every method takes the lock for a moment only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # the poll thread waits on the loop
        self._waiting_below: int | None = None  # ... until this few are left unmapped
        # messages in delivery, per partition, counted for the assignment they belong to
        self._outstanding: dict[TPKey, tuple[PartitionState, int]] = {}
        self._to_commit: dict[TPKey, Commit] = {}
        self._unprocessed = 0  # messages handed to the loop and not yet mapped

    @property
    def unprocessed(self) -> int:
        """Messages handed to the loop and not yet mapped (read without the lock: a hint)."""
        return self._unprocessed

    def handed(self, count: int) -> None:
        """The poll thread handed ``count`` messages to the loop."""
        with self._lock:
            self._unprocessed += count

    def mapped(self, count: int) -> None:
        """The loop mapped ``count`` handed-over messages."""
        with self._lock:
            self._unprocessed -= count
            if self._waiting_below is not None and self._unprocessed <= self._waiting_below:
                self._changed.notify()

    def wait_for_loop(self, limit: int, timeout: float) -> dict[TPKey, Commit]:
        """On the poll thread: block until the loop has mapped all but ``limit`` of the
        messages handed to it, asks for a commit, or ``timeout`` s passed; then the commits to
        make (taken). Woken by the loop, not by polling a clock."""
        with self._lock:
            if self._unprocessed > limit and not self._to_commit:
                self._waiting_below = limit
                try:
                    self._changed.wait(timeout)
                finally:
                    self._waiting_below = None
            to_commit, self._to_commit = self._to_commit, {}
            return to_commit

    @property
    def busy(self) -> bool:
        """True while commits wait or messages are in delivery."""
        with self._lock:
            return bool(self._to_commit) or any(count for _, count in self._outstanding.values())

    def take(self) -> tuple[dict[TPKey, Commit], dict[TPKey, int]]:
        """The commits to make (taken) and the messages in delivery (a copy)."""
        with self._lock:
            to_commit, self._to_commit = self._to_commit, {}
            return to_commit, {key: count for key, (_, count) in self._outstanding.items()}

    def commit(self, state: PartitionState, snapshot: Snapshot) -> None:
        """Ask for a commit of the partition (unless it was revoked); a newer one replaces it."""
        if state.revoked:
            return
        with self._lock:
            self._to_commit[state.key] = (state, snapshot)
            if self._waiting_below is not None:
                self._changed.notify()

    def forget(self, key: TPKey) -> None:
        """The partition was released: drop what is known of it."""
        with self._lock:
            self._outstanding.pop(key, None)
            self._to_commit.pop(key, None)

    def started(self, state: PartitionState, count: int) -> None:
        """``count`` messages of the partition went on to delivery."""
        with self._lock:
            if state.revoked:
                return
            owner, current = self._outstanding.get(state.key, (state, 0))
            if owner is not state:  # left over from an earlier assignment
                current = 0
            self._outstanding[state.key] = (state, current + count)

    def delivered_one(self, state: PartitionState) -> None:
        """One message of the partition left delivery (finished or abandoned).

        A late message of an earlier assignment never touches the current one's count.
        """
        with self._lock:
            entry = self._outstanding.get(state.key)
            if entry is not None and entry[0] is state:
                self._outstanding[state.key] = (state, entry[1] - 1)


def offset_of(message: Message) -> int:
    """The offset of a consumed message (always set)."""
    offset = message.offset()
    assert offset is not None, "consumed messages have offsets"
    return offset


def origin(message: Message) -> str:
    """Where a message came from, for logs: ``topic[partition]@offset``."""
    return f"{message.topic()}[{message.partition()}]@{message.offset()}"


def names(partitions: list[TopicPartition]) -> str:
    """Partitions for a log line: ``topic[0], topic[1]``."""
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"


def heads(states: Iterable[PartitionState], source: str) -> list[Head]:
    """The oldest unfinished message of each partition still owned (for the stuck watch)."""
    found = []
    for state in list(states):
        if state.revoked:
            continue
        oldest = state.tracker.oldest()
        partition = str(state.partition)
        if oldest is None:
            found.append(Head(source, state.topic, partition))
            continue
        offset, since = oldest
        found.append(Head(source, state.topic, partition, f"{state.topic}[{partition}]@{offset}",
                          since, state.waiting.get(offset)))
    return found


def expiry(message: Message, event: dict[str, Any], max_age: float) -> float | None:
    """When an ALERT stops being worth a page (``--max_event_age`` after its timestamp)."""
    if not max_age or event.get("eventType") != "ALERT":
        return None
    kind, millis = message.timestamp()
    if kind == TIMESTAMP_NOT_AVAILABLE or millis <= 0:
        return None
    return millis / 1000 + max_age
