"""The offset tracker of one partition: its watermark, what is finished above it, its memory."""

from __future__ import annotations

import tracemalloc

import pytest

from ilagent.offsets import OffsetTracker, merged


def run(steps: list[tuple[str, int]], restored: list[tuple[int, int]] | None = None
        ) -> OffsetTracker:
    tracker = OffsetTracker(restored or ())
    for op, offset in steps:
        getattr(tracker, op)(offset)
    return tracker


@pytest.mark.parametrize(("steps", "watermark"), [
    pytest.param([], None, id="nothing-seen"),
    pytest.param([("add", 5)], 5, id="one-pending"),
    pytest.param([("add", 5), ("finish", 5)], 6, id="one-done"),
    pytest.param([("add", 0), ("add", 1), ("add", 2), ("finish", 2), ("finish", 1)], 0,
                 id="out-of-order-head-pending"),
    pytest.param([("add", 0), ("add", 1), ("add", 2), ("finish", 2), ("finish", 0)], 1,
                 id="gap-in-the-middle"),
    pytest.param([("add", 0), ("add", 1), ("add", 2), ("finish", 1), ("finish", 0),
                  ("finish", 2)], 3, id="all-done-out-of-order"),
    pytest.param([("add", 10), ("add", 20), ("finish", 10)], 20, id="offset-gaps-compaction"),
    pytest.param([("add", 3), ("finish", 3), ("add", 4)], 4, id="new-after-done"),
    pytest.param([("add", 3), ("finish", 7)], 3, id="unknown-finish-ignored"),
    pytest.param([("skip", 5)], 6, id="skipped-only"),
    pytest.param([("add", 0), ("skip", 1)], 0, id="skip-behind-pending"),
    pytest.param([("add", 0), ("skip", 1), ("skip", 2), ("finish", 0)], 3,
                 id="skips-released-when-head-finishes"),
    pytest.param([("add", 5), ("add", 3), ("finish", 5)], 3, id="late-lower-offset-kept-ordered"),
])
def test_watermark(steps: list[tuple[str, int]], watermark: int | None) -> None:
    """The watermark is the lowest unfinished offset, else one past the highest seen."""
    assert run(steps).watermark() == watermark


def test_revoke_midway_keeps_the_lowest_unfinished() -> None:
    """With deliveries still in flight at revoke, the watermark stops before the first of them."""
    tracker = run([("add", o) for o in range(100)] + [("finish", o) for o in range(100)
                                                        if o != 42])
    assert tracker.watermark() == 42
    assert len(tracker) == 1
    tracker.finish(42)
    assert tracker.watermark() == 100 and len(tracker) == 0


@pytest.mark.parametrize(("steps", "restored", "finished"), [
    pytest.param([], None, [], id="nothing"),
    pytest.param([("add", 0), ("add", 1), ("finish", 0)], None, [], id="only-the-tail"),
    pytest.param([("add", 0), ("add", 1), ("finish", 1)], None, [(1, 2)], id="head-stuck"),
    pytest.param([("add", 0), ("add", 1), ("add", 2), ("finish", 1)], None, [(1, 2)],
                 id="one-done-between-two-pending"),
    pytest.param([("add", 0), ("skip", 1), ("skip", 2), ("add", 3), ("skip", 4)], None,
                 [(1, 3), (4, 5)], id="skipped-runs"),
    pytest.param([("add", 10), ("add", 20), ("add", 30), ("finish", 20)], None, [(11, 30)],
                 id="gaps-count-as-finished"),
    pytest.param([("add", 100)], [(101, 141)], [(101, 141)], id="restored-not-read-again-yet"),
    pytest.param([("add", 100), ("skip", 101), ("skip", 102)], [(101, 141)], [(101, 141)],
                 id="restored-partly-read-again"),
    pytest.param([("add", 100), ("skip", 101), ("add", 141), ("skip", 142)], [(101, 141)],
                 [(101, 141), (142, 143)], id="restored-then-new"),
    pytest.param([("add", 100), ("finish", 100)], [(101, 141), (150, 160)], [(150, 160)],
                 id="watermark-jumps-over-restored"),
])
def test_finished_above(steps: list[tuple[str, int]], restored: list[tuple[int, int]] | None,
                        finished: list[tuple[int, int]]) -> None:
    """The finished offsets above the watermark: the gaps between those in progress, those after
    the last, and the ones an earlier owner finished that were not read again yet."""
    assert run(steps, restored).finished_above() == finished


def test_restored_offsets_are_recognised_and_move_the_watermark() -> None:
    """Offsets the committed metadata lists are known as finished, and an empty partition's
    watermark moves past them without reading them again."""
    tracker = OffsetTracker([(101, 141), (150, 151)])
    assert [o for o in (100, 101, 140, 141, 149, 150, 151) if tracker.restored(o)] == [
        101, 140, 150]
    tracker.skip(99)
    assert tracker.watermark() == 100
    tracker.skip(100)
    assert tracker.watermark() == 141


def test_oldest_names_the_head_and_when_it_came() -> None:
    """The oldest offset in progress is reported with the time it was handed out."""
    tracker = OffsetTracker()
    assert tracker.oldest() is None
    tracker.add(7, 1.5)
    tracker.add(8, 2.5)
    tracker.finish(7)
    assert tracker.oldest() == (8, 2.5)


def test_merged_joins_touching_and_overlapping_ranges() -> None:
    """Ranges are sorted, empty ones dropped, touching and overlapping ones joined."""
    assert merged([(5, 7), (1, 3), (3, 4), (6, 9), (10, 10)]) == [(1, 4), (5, 9)]


def test_a_million_finished_behind_one_stuck_offset_fits_in_a_mebibyte() -> None:
    """1,000,000 finished offsets behind one stuck offset: the tracker holds under 1 MiB."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracker = OffsetTracker()
        tracker.add(0, 0.0)
        for offset in range(1, 1_000_001):
            tracker.add(offset, 0.0)
            tracker.finish(offset)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert tracker.watermark() == 0
    assert tracker.finished_above() == [(1, 1_000_001)]
    assert held < 1 << 20, f"{held} bytes"
