"""Per-partition state, and the hand-off between the poll thread and the event loop.

A :class:`PartitionState` lives for one assignment of one partition; the loop tracks its
offsets there. :class:`Handoff` is everything the two threads tell each other, behind one lock:
watermarks to store and messages in delivery per partition (loop → thread), messages handed
over and not yet mapped (thread → loop).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from confluent_kafka import Message, TopicPartition

from ilagent.offsets import OffsetTracker

TPKey = tuple[str, int]


@dataclass(eq=False)
class PartitionState:
    """One assignment of one partition; a new object each time it is assigned."""

    topic: str
    partition: int
    tracker: OffsetTracker = field(default_factory=OffsetTracker)
    revoked: bool = False
    live: int = 0  # messages handed to the loop and not yet finished or abandoned
    drained: asyncio.Event | None = None
    # offset → (masked key, lane) of each message in delivery, to name what holds a pause
    waiting: dict[int, tuple[str, object]] = field(default_factory=dict)
    held_by: str | None = None  # the masked key the held-back gauge names while paused

    @property
    def key(self) -> TPKey:
        return (self.topic, self.partition)


class Handoff:
    """The state both threads touch; every method takes the lock for a moment only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._to_store: dict[TPKey, tuple[PartitionState, int]] = {}
        # messages in delivery, per partition, counted for the assignment they belong to
        self._outstanding: dict[TPKey, tuple[PartitionState, int]] = {}
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

    def take(self) -> tuple[dict[TPKey, tuple[PartitionState, int]], dict[TPKey, int]]:
        """The watermarks to store (taken) and the messages in delivery (a copy)."""
        with self._lock:
            to_store, self._to_store = self._to_store, {}
            return to_store, {key: count for key, (_, count) in self._outstanding.items()}

    def forget(self, key: TPKey) -> None:
        """The partition was released: drop what is known of it."""
        with self._lock:
            self._outstanding.pop(key, None)
            self._to_store.pop(key, None)

    def started(self, state: PartitionState, count: int) -> None:
        """``count`` messages of the partition went on to delivery."""
        with self._lock:
            if state.revoked:
                return
            owner, current = self._outstanding.get(state.key, (state, 0))
            if owner is not state:  # left over from an earlier assignment
                current = 0
            self._outstanding[state.key] = (state, current + count)

    def store(self, state: PartitionState) -> None:
        """Ask for the partition's current watermark to be stored (unless it was revoked)."""
        if state.revoked:
            return
        watermark = state.tracker.watermark()
        if watermark is not None:
            with self._lock:
                self._to_store[state.key] = (state, watermark)

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
