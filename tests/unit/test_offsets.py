"""The contiguous-offset watermark of one partition."""

from __future__ import annotations

import pytest

from ilagent.offsets import OffsetTracker


def run(steps: list[tuple[str, int]]) -> OffsetTracker:
    tracker = OffsetTracker()
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
