"""The poll thread ↔ loop hand-off: counts belong to one assignment of a partition."""

from __future__ import annotations

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


def test_a_revoked_partition_stores_nothing() -> None:
    """Watermarks of a revoked assignment are never handed to the poll thread to store."""
    handoff = Handoff()
    state = PartitionState("t", 0)
    state.tracker.add(5)
    state.tracker.finish(5)
    state.revoked = True
    handoff.store(state)
    handoff.started(state, 1)
    assert handoff.take() == ({}, {})
