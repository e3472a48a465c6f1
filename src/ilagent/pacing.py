"""Pacing towards ilert's limits: token buckets per integration key and for the whole process.

ilert counts events in fixed one-minute windows (50 per alert-source key, 700 per IP). A plain
token bucket that starts full lets through its capacity *plus* a minute of refill inside one
window, which is up to twice the limit. So a bucket here holds a fiftieth of the limit (at
least one token) and refills the rest over the minute: no 60-second window ever sees more than
``per_minute`` sends, and a burst is spread out evenly (50/min: one send every 1.2 s) instead of
drawing 429s. The sustained rate is ``per_minute - capacity`` (49 of 50, 686 of 700). A 429
blocks its key for the wait it asks for, so every lane of that key waits without spinning.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """At most ``per_minute`` acquisitions in any 60-second window."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = max(1, per_minute // 50)
        self.rate = max(per_minute - self.capacity, 1) / 60.0
        self._clock = clock
        self._tokens = float(self.capacity)
        self._stamp = clock()

    def reserve(self) -> float:
        """Take one token, possibly on credit; return how many seconds the caller must wait."""
        now = self._clock()
        if now > self._stamp:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
        self._tokens -= 1.0
        wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        return wait

    def idle(self) -> bool:
        """True when the bucket is full again, so forgetting it changes nothing."""
        now = self._clock()
        refilled = self._tokens + (now - self._stamp) * self.rate
        return refilled >= self.capacity


class Pacer:
    """The buckets of one process: one per integration key and one in total (0 = off).

    A 429 blocks its key even when per-key pacing is off, so that every lane of that key
    waits, not only the one that drew it.
    """

    def __init__(
        self, *, per_key: int, total: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_key = per_key
        self._clock = clock
        self._total = TokenBucket(total, clock=clock) if total > 0 else None
        self._keys: dict[str, TokenBucket] = {}
        self._blocked: dict[str, float] = {}

    def _bucket(self, key: str) -> TokenBucket | None:
        if self.per_key <= 0:
            return None
        bucket = self._keys.get(key)
        if bucket is None:
            if len(self._keys) > 10_000:  # forget idle keys so memory follows the live key set
                self._keys = {k: b for k, b in self._keys.items() if not b.idle()}
            bucket = self._keys[key] = TokenBucket(self.per_key, clock=self._clock)
        return bucket

    def reserve(self, key: str) -> tuple[float, str | None]:
        """Reserve a send for ``key``: seconds to wait and which limit made it wait, if any."""
        now = self._clock()
        waits = [(self._blocked.get(key, now) - now, "rate_limited")]
        bucket = self._bucket(key)
        if bucket is not None:
            waits.append((bucket.reserve(), "key"))
        if self._total is not None:
            waits.append((self._total.reserve(), "total"))
        wait, scope = max(waits)
        return (wait, scope) if wait > 0 else (0.0, None)

    def penalize(self, key: str, seconds: float) -> None:
        """Hold back every send for ``key`` for ``seconds`` (ilert answered 429)."""
        now = self._clock()
        if len(self._blocked) > 10_000:
            self._blocked = {k: t for k, t in self._blocked.items() if t > now}
        self._blocked[key] = max(self._blocked.get(key, now), now + seconds)
