"""The per-address rate limit of the daemon's HTTP API (``--http_rate_limit``): pure, clocked.

Each client address has a token bucket that holds a sixth of the limit (ten seconds' worth) and
refills at the limit per minute: a client may send a burst of N/6 at once and N a minute after
that, so a replay after an outage passes and a loop gone wrong is slowed to the limit. IPv6
clients are counted per /64, the prefix one host is given: otherwise a single machine could
pick a fresh address for every request. The address is the peer of the connection; a
``X-Forwarded-For`` header is never trusted (anyone can send one).

Memory follows the clients of the last seconds: once more than :data:`MAX_ADDRESSES` are
known, those whose buckets are full again (idle for ten seconds) are forgotten.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address, IPv6Network

MAX_ADDRESSES = 10_000
BURST_SHARE = 6  # the bucket holds limit / BURST_SHARE: ten seconds' worth
IPV6_CLIENT_PREFIX = 64


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class AddressLimiter:
    """``per_minute`` requests a minute per client address, in bursts of a sixth of it."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.capacity = float(max(1, per_minute // BURST_SHARE))
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[object, _Bucket] = {}

    def __len__(self) -> int:
        """Client addresses remembered now."""
        return len(self._buckets)

    def check(self, address: IPv4Address | IPv6Address) -> float:
        """Take a token for a request from ``address``: 0.0 when it may go, else the seconds
        until it may (nothing is taken then)."""
        now = self._clock()
        client = _client(address)
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= MAX_ADDRESSES:
                self._forget_idle(now)
            bucket = self._buckets[client] = _Bucket(self.capacity, now)
        else:
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.stamp) * self._rate)
            bucket.stamp = now
        if bucket.tokens >= 1.0 - 1e-9:  # float slack: a token due now is there now
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    def _forget_idle(self, now: float) -> None:
        """Drop the buckets that are full again: forgetting them changes nothing."""
        self._buckets = {client: bucket for client, bucket in self._buckets.items()
                         if bucket.tokens + (now - bucket.stamp) * self._rate < self.capacity}


def _client(address: IPv4Address | IPv6Address) -> object:
    """What one client is: its IPv4 address, or the /64 of its IPv6 address."""
    if isinstance(address, IPv6Address):
        return IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False)
    return address
