"""Token buckets: never more than the limit in any 60-second window; 429s block one key."""

from __future__ import annotations

import pytest

from ilagent.pacing import Pacer, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sends_in_window(per_minute: int, seconds: float) -> int:
    """Greedy sender: sends whenever the bucket allows, counts sends within ``seconds``."""
    clock = Clock()
    bucket = TokenBucket(per_minute, clock=clock)
    start, sent = clock.now, 0
    while True:
        wait = bucket.reserve()
        clock.now += wait
        if clock.now - start >= seconds:
            return sent
        sent += 1


@pytest.mark.parametrize("per_minute", [5, 50, 700])
def test_no_window_exceeds_the_limit(per_minute: int) -> None:
    """A bucket starting full lets at most per_minute sends through the first 60 s."""
    assert sends_in_window(per_minute, 60.0) <= per_minute


def test_burst_is_spread_out() -> None:
    """A burst for one key is spread evenly: 50/min means one send about every 1.2 s."""
    clock = Clock()
    bucket = TokenBucket(50, clock=clock)
    assert bucket.reserve() == 0.0
    assert [round(bucket.reserve(), 2) for _ in range(3)] == [1.22, 2.45, 3.67]


def test_total_bucket_allows_a_small_burst() -> None:
    """The 700/min bucket lets 14 sends go at once before spacing the rest."""
    clock = Clock()
    bucket = TokenBucket(700, clock=clock)
    assert [bucket.reserve() for _ in range(14)] == [0.0] * 14
    assert bucket.reserve() > 0


def test_long_run_rate_is_the_limit() -> None:
    """Over ten minutes the sustained rate approaches per_minute."""
    assert 490 <= sends_in_window(50, 600.0) <= 500


def test_pacing_off_never_waits() -> None:
    """With both limits 0 nothing waits."""
    pacer = Pacer(per_key=0, total=0)
    assert all(pacer.reserve("k") == (0.0, None) for _ in range(10_000))


def test_429_blocks_only_its_key() -> None:
    """After penalize, the key waits the full time; another key does not wait at all."""
    clock = Clock()
    pacer = Pacer(per_key=0, total=0, clock=clock)
    pacer.penalize("slow", 12.0)
    wait, scope = pacer.reserve("slow")
    assert wait == pytest.approx(12.0) and scope == "rate_limited"
    assert pacer.reserve("fast") == (0.0, None)
    clock.now += 12.5
    assert pacer.reserve("slow") == (0.0, None)


def test_total_limit_spans_keys() -> None:
    """The process-wide bucket slows down many keys together."""
    clock = Clock()
    pacer = Pacer(per_key=0, total=50, clock=clock)
    waits = [pacer.reserve(f"k{i}") for i in range(2)]
    assert waits[-1][0] > 0 and waits[-1][1] == "total"
