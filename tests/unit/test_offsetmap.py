"""The finished-offset map in commit metadata: round trip, size bound, foreign and corrupt input."""

from __future__ import annotations

import base64
import random
import zlib

from hypothesis import given
from hypothesis import strategies as st

from ilagent.offsetmap import MAX_METADATA, PREFIX, decode, encode
from ilagent.offsets import merged


@st.composite
def maps(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]]]:
    """A position and disjoint, non-touching finished ranges above it."""
    position = draw(st.integers(0, 1 << 40))
    ranges, end = [], position
    for gap, length in draw(st.lists(st.tuples(st.integers(1, 5000), st.integers(1, 5000)),
                                     max_size=300)):
        start = end + gap
        end = start + length
        ranges.append((start, end))
    return position, ranges


@given(maps())
def test_round_trip(case: tuple[int, list[tuple[int, int]]]) -> None:
    """What fits is decoded exactly as it was encoded."""
    position, ranges = case
    text = encode(position, ranges)
    decoded = decode(text, position)
    assert decoded == ranges[: len(decoded)]
    if len(encode(position, ranges, limit=1 << 30)) <= MAX_METADATA:
        assert decoded == ranges


@given(maps(), st.integers(40, 600))
def test_size_bound_keeps_the_lowest_ranges(case: tuple[int, list[tuple[int, int]]],
                                            limit: int) -> None:
    """Over the limit, the string still fits and lists only a prefix of the ranges: offsets it
    leaves out count as unfinished (sent again), never as finished."""
    position, ranges = case
    text = encode(position, ranges, limit=limit)
    assert len(text) <= limit
    decoded = decode(text, position)
    assert decoded == ranges[: len(decoded)]


def test_a_sparse_map_too_big_for_4000_characters_is_cut() -> None:
    """Thousands of scattered finished offsets: the map is cut to fit, lowest ranges first."""
    rng = random.Random(5)
    ranges, end = [], 1
    for _ in range(20_000):
        start = end + rng.randint(1, 1000)
        end = start + rng.randint(1, 1000)
        ranges.append((start, end))
    text = encode(1, ranges)
    assert len(text) <= MAX_METADATA
    decoded = decode(text, 1)
    assert 0 < len(decoded) < len(ranges)
    assert decoded == ranges[: len(decoded)]


def test_a_million_finished_behind_one_offset_is_tiny() -> None:
    """One stuck offset and a million finished behind it: a few dozen characters."""
    assert len(encode(41, [(42, 1_000_042)])) < 40


@given(st.text(max_size=200), st.integers(0, 1000))
def test_foreign_metadata_lists_nothing(metadata: str, position: int) -> None:
    """Any string that is not ours lists nothing (and never raises)."""
    if not metadata.startswith(PREFIX):
        assert decode(metadata, position) == []


@given(st.binary(max_size=200), st.integers(0, 1000))
def test_corrupt_payloads_list_nothing_or_valid_ranges(payload: bytes, position: int) -> None:
    """A damaged payload never raises and never lists an offset at or below the position."""
    text = f"{PREFIX}{position}:{base64.urlsafe_b64encode(payload).decode().rstrip('=')}"
    for start, end in decode(text, position):
        assert position < start < end
    assert merged(decode(text, position)) == decode(text, position)


def test_a_map_for_another_position_is_ignored() -> None:
    """After a manual offset reset the committed offset differs: the map is not used."""
    text = encode(100, [(101, 141)])
    assert decode(text, 100) == [(101, 141)]
    assert decode(text, 90) == []
    assert decode(text, 101) == []


def test_other_versions_and_empty_metadata_list_nothing() -> None:
    """Version 2, no metadata, or the header without a payload: nothing is skipped."""
    assert decode(None, 5) == []
    assert decode("", 5) == []
    assert decode("ilagent:2:5:cgEB", 5) == []
    assert decode("ilagent:1:5:", 5) == []


def test_a_zlib_bomb_is_refused() -> None:
    """A compressed payload that inflates beyond any real map is refused."""
    bomb = b"z" + zlib.compress(b"\x01" * (4 << 20), 9)
    text = f"{PREFIX}0:{base64.urlsafe_b64encode(bomb).decode().rstrip('=')}"
    assert decode(text, 0) == []


def test_offsets_below_the_position_are_not_encoded() -> None:
    """Ranges at or below the committed position are not part of the map."""
    assert decode(encode(10, [(5, 8), (10, 12), (12, 15)]), 10) == [(12, 15)]
