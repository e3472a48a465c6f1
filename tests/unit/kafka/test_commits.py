"""When the Kafka source commits: the cadence of commit rounds and what each commit carries."""

from __future__ import annotations

from ilagent import offsetmap
from ilagent.kafka.commits import BUSY_FINISHED, BUSY_INTERVAL, COMMIT_INTERVAL, CommitRounds
from ilagent.kafka.partitions import Handoff, PartitionState


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def finish(state: PartitionState, rounds: CommitRounds, *offsets: int) -> None:
    for offset in offsets:
        state.tracker.add(offset)
    for offset in offsets:
        state.tracker.finish(offset)
        rounds.changed(state)


def commits(handoff: Handoff) -> list[tuple[int, str]]:
    return [snapshot for _state, snapshot in handoff.take()[0].values()]


async def test_a_quiet_partition_is_committed_at_most_four_times_a_second() -> None:
    """A few finished messages: committed at once, then not again before a quarter second."""
    handoff, clock = Handoff(), Clock()
    rounds, state = CommitRounds(handoff, clock=clock), PartitionState("t", 0)
    finish(state, rounds, 0)
    assert commits(handoff) == [(1, offsetmap.encode(1, []))]
    clock.now = 100.1
    finish(state, rounds, 1, 2)
    assert commits(handoff) == []
    assert rounds.round(clock.now) == 100.0 + COMMIT_INTERVAL
    assert commits(handoff) == []
    assert rounds.round(100.0 + COMMIT_INTERVAL) is None
    assert commits(handoff) == [(3, offsetmap.encode(3, []))]


async def test_a_partition_draining_a_backlog_is_committed_every_few_milliseconds() -> None:
    """Once many messages finished since its last commit, a partition's next commit comes
    after BUSY_INTERVAL instead of a quarter second."""
    handoff, clock = Handoff(), Clock()
    rounds, state = CommitRounds(handoff, clock=clock), PartitionState("t", 0)
    finish(state, rounds, 0)
    clock.now = 100.0 + BUSY_INTERVAL / 2
    finish(state, rounds, *range(1, 1 + BUSY_FINISHED))
    assert rounds.round(clock.now) == 100.0 + BUSY_INTERVAL
    assert rounds.round(100.0 + BUSY_INTERVAL) is None
    assert commits(handoff)[-1][0] == 1 + BUSY_FINISHED


async def test_a_due_partition_is_committed_as_its_message_finishes() -> None:
    """A message finishing when its partition's commit is due is committed right then, not by
    a timer that a busy event loop would run late."""
    handoff, clock = Handoff(), Clock()
    rounds, state = CommitRounds(handoff, clock=clock), PartitionState("t", 0)
    finish(state, rounds, 0)
    commits(handoff)
    clock.now = 100.0 + BUSY_INTERVAL
    finish(state, rounds, *range(1, 1 + BUSY_FINISHED))
    assert commits(handoff) == [(1 + BUSY_FINISHED, offsetmap.encode(1 + BUSY_FINISHED, []))]


async def test_the_map_of_finished_offsets_goes_with_the_position() -> None:
    """A stuck head and finished messages behind it: the commit names both."""
    handoff, clock = Handoff(), Clock()
    rounds, state = CommitRounds(handoff, clock=clock), PartitionState("t", 0)
    state.last_commit = clock.now  # just committed: the next is made by the round
    state.tracker.add(0)
    finish(state, rounds, 1, 2, 3)
    rounds.round(100.0 + COMMIT_INTERVAL)
    assert commits(handoff) == [(0, offsetmap.encode(0, [(1, 4)]))]


async def test_an_unchanged_partition_is_not_committed_again() -> None:
    """A change that left position and map as they were commits nothing."""
    handoff, clock = Handoff(), Clock()
    rounds, state = CommitRounds(handoff, clock=clock), PartitionState("t", 0)
    finish(state, rounds, 0)
    commits(handoff)
    clock.now = 101.0
    rounds.changed(state)
    assert rounds.round(clock.now) is None
    assert commits(handoff) == []


async def test_a_revoked_partition_is_not_committed_by_a_round() -> None:
    """A partition being released is committed by the revoke itself, never by a late round."""
    handoff, clock = Handoff(), Clock()
    rounds, state = CommitRounds(handoff, clock=clock), PartitionState("t", 0)
    state.last_commit = clock.now
    finish(state, rounds, 0)
    state.revoked = True
    assert rounds.round(100.0 + COMMIT_INTERVAL) is None
    assert commits(handoff) == []
