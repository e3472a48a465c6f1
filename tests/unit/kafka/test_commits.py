"""When the Kafka source commits: the cadence of commit rounds and what each commit carries."""

from __future__ import annotations

from ilagent import offsetmap
from ilagent.kafka.commits import BUSY_FINISHED, BUSY_INTERVAL, COMMIT_INTERVAL, CommitRounds
from ilagent.kafka.partitions import Handoff, PartitionState


def finish(state: PartitionState, rounds: CommitRounds, *offsets: int) -> None:
    for offset in offsets:
        state.tracker.add(offset)
    for offset in offsets:
        state.tracker.finish(offset)
        rounds.changed(state)


def commits(handoff: Handoff) -> list[tuple[int, str]]:
    return [snapshot for _state, snapshot in handoff.take_commits().values()]


async def test_a_quiet_partition_is_committed_at_most_four_times_a_second() -> None:
    """A few finished messages: committed at once, then not again before a quarter second."""
    handoff = Handoff()
    rounds, state = CommitRounds(handoff), PartitionState("t", 0)
    finish(state, rounds, 0)
    assert rounds.round(100.0) is None
    assert commits(handoff) == [(1, offsetmap.encode(1, []))]
    finish(state, rounds, 1, 2)
    assert rounds.round(100.1) == 100.0 + COMMIT_INTERVAL
    assert commits(handoff) == []
    assert rounds.round(100.0 + COMMIT_INTERVAL) is None
    assert commits(handoff) == [(3, offsetmap.encode(3, []))]


async def test_a_partition_draining_a_backlog_is_committed_every_few_milliseconds() -> None:
    """Once many messages finished since its last commit, a partition's next commit comes
    after BUSY_INTERVAL instead of a quarter second."""
    handoff = Handoff()
    rounds, state = CommitRounds(handoff), PartitionState("t", 0)
    finish(state, rounds, 0)
    rounds.round(100.0)
    finish(state, rounds, *range(1, 1 + BUSY_FINISHED))
    assert rounds.round(100.0 + BUSY_INTERVAL / 2) == 100.0 + BUSY_INTERVAL
    assert rounds.round(100.0 + BUSY_INTERVAL) is None
    assert commits(handoff)[-1][0] == 1 + BUSY_FINISHED


async def test_the_map_of_finished_offsets_goes_with_the_position() -> None:
    """A stuck head and finished messages behind it: the commit names both."""
    handoff = Handoff()
    rounds, state = CommitRounds(handoff), PartitionState("t", 0)
    state.tracker.add(0)
    finish(state, rounds, 1, 2, 3)
    rounds.round(100.0)
    assert commits(handoff) == [(0, offsetmap.encode(0, [(1, 4)]))]


async def test_an_unchanged_partition_is_not_committed_again() -> None:
    """A round after a change that left position and map as they were commits nothing."""
    handoff = Handoff()
    rounds, state = CommitRounds(handoff), PartitionState("t", 0)
    finish(state, rounds, 0)
    rounds.round(100.0)
    commits(handoff)
    rounds.changed(state)
    assert rounds.round(101.0) is None
    assert commits(handoff) == []


async def test_a_revoked_partition_is_not_committed_by_a_round() -> None:
    """A partition being released is committed by the revoke itself, never by a late round."""
    handoff = Handoff()
    rounds, state = CommitRounds(handoff), PartitionState("t", 0)
    finish(state, rounds, 0)
    state.revoked = True
    assert rounds.round(100.0) is None
    assert commits(handoff) == []
