"""Where each consumed message stands between the hand-over and its end, per partition.

The Kafka bridge maps a batch and tells this class which messages went on to delivery (or a
dead letter) and which ended right there (filtered, a drill, finished before a restart);
later, as each delivered or dead-lettered message ends, whether it finished or was given back
to be read again. From that it keeps the partition's offset tracker, its count of live
messages (a revoke waits for them) and the poll thread's hand-off count up to date, and tells
:class:`~ilagent.kafka.commits.CommitRounds` which partitions have something new to commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ilagent.delivery.job import Parts
from ilagent.kafka.commits import CommitRounds
from ilagent.kafka.partitions import Handoff, PartitionState, TPKey


class Settlement:
    """The bookkeeping of messages in delivery, shared by a bridge's batches and its jobs."""

    def __init__(self, handoff: Handoff, rounds: CommitRounds) -> None:
        self._handoff = handoff
        self._rounds = rounds

    @staticmethod
    def start(state: PartitionState, offset: int, started: dict[TPKey, list[Any]],
              now: float) -> None:
        """A message goes on to delivery or a dead letter: track it until it finishes."""
        state.tracker.add(offset, now)
        state.live += 1
        started.setdefault(state.key, [state, 0])[1] += 1

    def settle(self, done: Iterable[PartitionState], started: Iterable[list[Any]]) -> None:
        """After a batch: count the messages now in delivery, note what finished."""
        for state, count in started:
            self._handoff.started(state, count)
        for state in done:
            self._rounds.changed(state)

    def ended(self, state: PartitionState, offset: int, parts: Parts | None, *,
              finished: bool) -> None:
        """One event of a message ended; the message with the last of them: finished when
        each was, else given back to be read again."""
        if parts is not None and not parts.end(finished=finished):
            return
        if finished and not (parts is not None and parts.withdrawn):
            state.tracker.finish(offset)
            self._release(state, offset)
            self._rounds.changed(state)
        else:
            self._release(state, offset)

    def _release(self, state: PartitionState, offset: int) -> None:
        state.waiting.pop(offset, None)
        self._handoff.delivered_one(state)
        state.live -= 1
        if state.revoked and state.live == 0 and state.drained is not None:
            state.drained.set()
