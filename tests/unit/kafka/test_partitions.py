"""The poll thread ↔ loop hand-off: counts belong to one assignment of a partition."""

from __future__ import annotations

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
