"""The per-address rate limit of the daemon's HTTP API: pure, on an injected clock."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from ilagent.web.ratelimit import MAX_ADDRESSES, AddressLimiter


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_gets_a_burst_then_waits_for_the_next_token() -> None:
    """600 a minute: a burst of 100 (ten seconds' worth) passes at once, the next request is
    told to wait 0.1 s, and passes once that has elapsed."""
    clock = Clock()
    limiter = AddressLimiter(600, clock=clock)
    client = ip_address("192.0.2.7")
    assert [limiter.check(client) for _ in range(100)] == [0.0] * 100
    wait = limiter.check(client)
    assert wait == pytest.approx(0.1)
    clock.now += wait
    assert limiter.check(client) == 0.0
    assert limiter.check(client) == pytest.approx(0.1)


def test_a_client_retrying_as_told_gets_the_limit_per_minute_and_no_more() -> None:
    """A client that retries every 50 ms for five minutes gets through the burst plus the limit
    per minute, and no 60-second window sees more than the limit plus the burst."""
    clock = Clock()
    limiter = AddressLimiter(120, clock=clock)
    client = ip_address("10.1.2.3")
    passed: list[float] = []
    for _ in range(6000):
        clock.now += 0.05
        if limiter.check(client) == 0.0:
            passed.append(clock.now)
    assert 20 + 5 * 120 - 1 <= len(passed) <= 20 + 5 * 120
    first = 0
    for last, now in enumerate(passed):
        while passed[first] <= now - 60:
            first += 1
        assert last - first + 1 <= 120 + 20


def test_addresses_are_limited_apart_and_an_ipv6_slash_64_is_one_client() -> None:
    """One client's burst does not touch another's; two addresses of one IPv6 /64 share one
    budget (a host has a whole /64 to pick addresses from), another /64 has its own."""
    limiter = AddressLimiter(6, clock=Clock())
    assert limiter.check(ip_address("192.0.2.1")) == 0.0
    assert limiter.check(ip_address("192.0.2.1")) > 0
    assert limiter.check(ip_address("192.0.2.2")) == 0.0
    assert limiter.check(ip_address("2001:db8:1:2::1")) == 0.0
    assert limiter.check(ip_address("2001:db8:1:2:ffff::9")) > 0
    assert limiter.check(ip_address("2001:db8:1:3::1")) == 0.0


def test_memory_follows_the_clients_of_the_last_seconds() -> None:
    """Clients whose buckets are full again are forgotten once there are many: a sweep of
    addresses cannot grow the limiter without bound."""
    clock = Clock()
    limiter = AddressLimiter(600, clock=clock)
    for n in range(3 * MAX_ADDRESSES):
        clock.now += 0.01
        limiter.check(ip_address(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"))
    assert len(limiter) <= MAX_ADDRESSES + 1
