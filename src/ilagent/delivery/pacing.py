"""Pacing towards ilert's limits: token buckets per integration key and for the whole process.

ilert counts events in fixed one-minute windows (50 per alert-source key, 700 per IP). A plain
token bucket that starts full lets through its capacity *plus* a minute of refill inside one
window, which is up to twice the limit. So a bucket here holds a fiftieth of the limit (at
least one token) and refills the rest over the minute: no 60-second window ever sees more than
``per_minute`` sends, and a burst is spread out evenly (50/min: one send every 1.2 s) instead of
drawing 429s. The sustained rate is ``per_minute - capacity`` (49 of 50, 686 of 700). A 429
block is :mod:`ilagent.delivery.gate`'s, not a bucket's. Heartbeat keys have buckets of their own (ilert
allows 5 pings per minute per heartbeat).
"""

from __future__ import annotations

import time
from collections.abc import Callable

_EPSILON = 1e-9  # float slack: a token due "now" is available now


class TokenBucket:
    """At most ``per_minute`` acquisitions in any 60-second window."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = max(1, per_minute // 50)
        self.rate = max(per_minute - self.capacity, 1) / 60.0
        self._clock = clock
        self._tokens = float(self.capacity)
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        if now > self._stamp:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now

    def wait(self) -> float:
        """Seconds until a token is available (0 when one is); nothing is taken."""
        self._refill()
        missing = 1.0 - self._tokens
        return 0.0 if missing <= _EPSILON else missing / self.rate

    def take(self) -> None:
        """Take a token that :meth:`wait` said is available."""
        self._refill()
        self._tokens -= 1.0

    def idle(self) -> bool:
        """True when the bucket is full again, so forgetting it changes nothing."""
        now = self._clock()
        refilled = self._tokens + (now - self._stamp) * self.rate
        return refilled >= self.capacity


class Pacer:
    """The buckets of one process: per integration key, per heartbeat key and in total (0 = off).

    Tokens are taken only at the moment a request goes out (:meth:`take`), and the total one
    only together with the key's: a key that waits for its own bucket, a 429 block or the
    circuit holds no share of the process-wide limit, so it cannot delay other keys.
    """

    def __init__(
        self,
        *,
        per_key: int,
        total: int,
        per_heartbeat: int = 0,
        per_policy: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_key = per_key
        self._limits = {"heartbeat": per_heartbeat, "policy": per_policy}  # else per_key
        self._clock = clock
        self._total = TokenBucket(total, clock=clock) if total > 0 else None
        self._keys: dict[tuple[str, str], TokenBucket] = {}
        # pacing off altogether (every limit 0): nothing to look up per request
        self._off = self._total is None and per_key <= 0 and per_heartbeat <= 0 \
            and per_policy <= 0

    def _bucket(self, key: str, kind: str) -> TokenBucket | None:
        limit = self._limits.get(kind, self.per_key)
        if limit <= 0:
            return None
        bucket = self._keys.get((key, kind))
        if bucket is None:
            if len(self._keys) > 10_000:  # forget idle keys so memory follows the live key set
                self._keys = {k: b for k, b in self._keys.items() if not b.idle()}
            bucket = self._keys[(key, kind)] = TokenBucket(limit, clock=self._clock)
        return bucket

    def wait(self, key: str, *, kind: str = "key") -> float:
        """Seconds until the key's own bucket has a token (the total one is not looked at);
        ``kind`` is "key" (events), "heartbeat" or "policy"."""
        if self._off:
            return 0.0
        bucket = self._bucket(key, kind)
        return bucket.wait() if bucket is not None else 0.0

    def take(self, key: str, *, kind: str = "key") -> tuple[float, str | None]:
        """Take the key's and the total token if both are available now: ``(0.0, None)``.

        Otherwise take nothing and return how long to wait and which limit (``kind`` or
        "total") made it wait.
        """
        if self._off:
            return 0.0, None
        bucket = self._bucket(key, kind)
        waits = []
        if bucket is not None:
            waits.append((bucket.wait(), kind))
        if self._total is not None:
            waits.append((self._total.wait(), "total"))
        wait, scope = max(waits, default=(0.0, None))
        if wait > 0:
            return wait, scope
        if bucket is not None:
            bucket.take()
        if self._total is not None:
            self._total.take()
        return 0.0, None
