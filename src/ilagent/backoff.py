"""Retry delays (pure): exponential backoff with full jitter, and ``Retry-After`` parsing."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

DEFAULT_INITIAL_DELAY = 1.0
DEFAULT_MAX_DELAY = 60.0
# ilert counts events in fixed one-minute windows and suggests waiting 10-30 s after a 429
DEFAULT_RATE_LIMIT_DELAY = 10.0
MAX_RETRY_AFTER = 300.0


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait before attempt ``n + 1`` and when to give up.

    ``max_retries`` of 0 means unlimited (the at-least-once default for Kafka).
    """

    initial_delay: float = DEFAULT_INITIAL_DELAY
    max_delay: float = DEFAULT_MAX_DELAY
    rate_limit_delay: float = DEFAULT_RATE_LIMIT_DELAY
    max_retries: int = 0

    def delay(self, attempt: int, *, rand: Callable[[], float] = random.random) -> float:
        """Full-jitter delay after the ``attempt``-th failure (1-based): U(0, min(cap, base·2ⁿ⁻¹))."""
        exponent = min(max(attempt - 1, 0), 62)
        return rand() * min(self.max_delay, self.initial_delay * 2.0**exponent)

    def rate_limited_delay(
        self, attempt: int, retry_after: float | None, *, rand: Callable[[], float] = random.random
    ) -> float:
        """Wait after a 429: ``Retry-After`` when given, else at least ``rate_limit_delay``."""
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER)
        return max(self.rate_limit_delay, self.delay(attempt, rand=rand))

    def exhausted(self, attempts: int) -> bool:
        """True when ``attempts`` failed attempts used up the retries (never when unlimited)."""
        return self.max_retries > 0 and attempts > self.max_retries


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
