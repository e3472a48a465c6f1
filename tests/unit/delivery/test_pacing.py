"""Token buckets: never more than the limit in any 60-second window; tokens only when sending."""

from __future__ import annotations

import pytest

from ilagent.delivery.pacing import Pacer, TokenBucket


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
        clock.now += bucket.wait()
        if clock.now - start >= seconds:
            return sent
        bucket.take()
        sent += 1


@pytest.mark.parametrize("per_minute", [5, 50, 700])
def test_no_window_exceeds_the_limit(per_minute: int) -> None:
    """A bucket starting full lets at most per_minute sends through the first 60 s."""
    assert sends_in_window(per_minute, 60.0) <= per_minute


def test_burst_is_spread_out() -> None:
    """A burst for one key is spread evenly: 50/min means one send about every 1.2 s."""
    clock = Clock()
    bucket = TokenBucket(50, clock=clock)
    gaps = []
    for _ in range(4):
        gaps.append(round(bucket.wait(), 2))
        clock.now += bucket.wait()
        bucket.take()
    assert gaps == [0.0, 1.22, 1.22, 1.22]


def test_total_bucket_allows_a_small_burst() -> None:
    """The 700/min bucket lets 14 sends go at once before spacing the rest."""
    clock = Clock()
    bucket = TokenBucket(700, clock=clock)
    for _ in range(14):
        assert bucket.wait() == 0.0
        bucket.take()
    assert bucket.wait() > 0


def test_long_run_rate_is_the_limit() -> None:
    """Over ten minutes the sustained rate approaches per_minute."""
    assert 490 <= sends_in_window(50, 600.0) <= 500


def test_pacing_off_never_waits() -> None:
    """With both limits 0 nothing waits."""
    pacer = Pacer(per_key=0, total=0)
    assert all(pacer.take("k") == (0.0, None) for _ in range(10_000))


def test_total_limit_spans_keys() -> None:
    """The process-wide bucket slows down many keys together."""
    clock = Clock()
    pacer = Pacer(per_key=0, total=50, clock=clock)
    assert pacer.take("k0") == (0.0, None)
    wait, scope = pacer.take("k1")
    assert wait > 0 and scope == "total"


def test_a_waiting_key_takes_no_share_of_the_total() -> None:
    """A key whose own bucket is empty takes nothing, so the total's tokens stay for others."""
    clock = Clock()
    pacer = Pacer(per_key=50, total=700, clock=clock)  # the total bucket holds 14 tokens
    assert pacer.take("busy") == (0.0, None)
    for _ in range(100):  # the busy key asks over and over while its bucket is empty
        wait, scope = pacer.take("busy")
        assert wait > 0 and scope == "key"
    assert [pacer.take(f"other{i}") for i in range(13)] == [(0.0, None)] * 13
    assert pacer.take("other13")[1] == "total"


def test_heartbeat_keys_have_their_own_limit() -> None:
    """Pings are paced at their own rate (5/min), apart from the events of the same key."""
    clock = Clock()
    pacer = Pacer(per_key=50, total=0, per_heartbeat=5, clock=clock)
    assert pacer.take("k", kind="heartbeat") == (0.0, None)
    wait, scope = pacer.take("k", kind="heartbeat")
    assert scope == "heartbeat" and wait == pytest.approx(15.0)
    assert pacer.take("k") == (0.0, None)
    assert pacer.wait("k", kind="heartbeat") == pytest.approx(15.0)
