"""The spool's memory window: caps per key and per lane, and when a key may catch up."""

from __future__ import annotations

from ilagent.spool.window import Window


def test_a_key_never_fills_the_window() -> None:
    """Rows of one key stop at the per-key cap; another key still fits."""
    window = Window(20, per_key=5, per_lane=2)
    for n in range(5):
        assert window.fits("a", ("a", n))
        window.add(n, "a", ("a", n))
    assert not window.fits("a", ("a", 99)) and window.fits("b", None)


def test_a_lane_never_fills_its_key() -> None:
    """Rows of one lane stop at the per-lane cap; other lanes of the key still fit."""
    window = Window(20, per_key=5, per_lane=2)
    window.add(1, "a", "hot")
    window.add(2, "a", "hot")
    assert not window.fits("a", "hot") and window.fits("a", "cold")


def test_the_window_is_bounded() -> None:
    """However many keys, no more than ``size`` rows."""
    window = Window(3, per_key=3, per_lane=3)
    for n in range(3):
        window.add(n, f"k{n}", None)
    assert window.full and not window.fits("new", None)


def test_a_key_behind_catches_up_when_half_its_room_is_free() -> None:
    """Settling rows of a key that was passed over names it once half its cap is free."""
    window = Window(20, per_key=4, per_lane=4)
    for n in range(4):
        window.add(n, "a", None)
    window.pass_over("a", 10)
    window.pass_over("a", 7)
    assert window.behind == {"a": 7}
    assert window.remove(0) is None  # 3 of 4 left: not yet
    assert window.remove(1) == "a"  # 2 of 4: room to catch up
    assert window.remove(99) is None  # not loaded


def test_a_full_lane_frees_room_for_its_key() -> None:
    """A key behind because of one lane catches up when that lane drains to half."""
    window = Window(20, per_key=10, per_lane=2)
    window.add(1, "a", "hot")
    window.add(2, "a", "hot")
    window.pass_over("a", 3)
    assert window.remove(1) == "a"
