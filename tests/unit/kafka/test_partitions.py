"""The poll thread ↔ loop hand-off: counts belong to one assignment of a partition."""

from __future__ import annotations

import threading
import time
from typing import Any

from ilagent import offsetmap
from ilagent.kafka.partitions import Handoff, PartitionState


def test_a_late_message_of_an_old_assignment_leaves_the_new_count_alone() -> None:
    """After a revoke and a new assignment, the old assignment's finishing messages do not
    lower the new assignment's count of messages in delivery."""
    handoff = Handoff()
    old = PartitionState("t", 0)
    handoff.started(old, 3)
    old.revoked = True
    handoff.forget(old.key)
    new = PartitionState("t", 0)
    handoff.started(new, 2)
    handoff.delivered_one(old)
    handoff.delivered_one(old)
    assert handoff.take()[1] == {("t", 0): 2}
    handoff.delivered_one(new)
    assert handoff.take()[1] == {("t", 0): 1}


def test_the_snapshot_carries_the_map_of_finished_offsets() -> None:
    """A partition's commit is its watermark with the finished offsets above it as metadata."""
    state = PartitionState("t", 0)
    for offset in range(10):
        state.tracker.add(offset)
    for offset in range(1, 10):
        state.tracker.finish(offset)
    assert state.snapshot() == (0, offsetmap.encode(0, [(1, 10)]))
    assert offsetmap.decode(state.snapshot()[1], 0) == [(1, 10)]  # type: ignore[index]


class Waiter(threading.Thread):
    """The poll thread's side: one wait_for_loop() with a long timeout."""

    def __init__(self, handoff: Handoff, limit: int) -> None:
        super().__init__(daemon=True)
        self.handoff, self.limit, self.commits = handoff, limit, None
        self.start()

    def run(self) -> None:
        self.commits = self.handoff.wait_for_loop(self.limit, 60.0)  # type: ignore[assignment]

    def until_waiting(self) -> None:
        deadline = time.monotonic() + 10
        while self.handoff._waiting_below is None:  # the moment it waits
            assert time.monotonic() < deadline, "the poll thread never waited"
            time.sleep(0.001)

    def ended(self) -> Any:
        self.join(10)  # far below the wait's 60 s: only a wake-up ends it this soon
        assert not self.is_alive(), "the poll thread was not woken"
        return self.commits


def test_the_poll_thread_does_not_wait_for_a_loop_that_has_caught_up() -> None:
    handoff = Handoff()
    handoff.handed(5)
    assert Waiter(handoff, limit=5).ended() == {}


def test_the_loop_wakes_the_waiting_poll_thread_once_it_has_caught_up() -> None:
    """The moment between a batch handed over and mapped: the poll thread sleeps on it and is
    woken when the loop is down to the limit, not after a clock tick (issue 27)."""
    handoff = Handoff()
    handoff.handed(3000)
    waiter = Waiter(handoff, limit=2000)
    waiter.until_waiting()
    handoff.mapped(500)  # 2,500 left: still behind
    assert waiter.is_alive()
    handoff.mapped(500)
    assert waiter.ended() == {}


def test_a_commit_asked_for_meanwhile_wakes_the_poll_thread_and_is_handed_to_it() -> None:
    handoff = Handoff()
    handoff.handed(3000)
    waiter = Waiter(handoff, limit=2000)
    waiter.until_waiting()
    state = PartitionState("t", 0)
    handoff.commit(state, (7, ""))
    assert waiter.ended() == {("t", 0): (state, (7, ""))}
    assert handoff.take()[0] == {}
