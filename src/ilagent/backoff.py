"""Retry delays (pure): exponential backoff with full jitter, and ``Retry-After`` parsing."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from ilagent.config import RetryPolicy

MAX_RETRY_AFTER = 300.0


def delay(policy: RetryPolicy, attempt: int, *, rand: Callable[[], float] = random.random) -> float:
    """Full-jitter delay after the ``attempt``-th failure (1-based): U(0, min(cap, base·2ⁿ⁻¹))."""
    exponent = min(max(attempt - 1, 0), 62)
    return rand() * min(policy.max_delay, policy.initial_delay * 2.0**exponent)


def rate_limited_delay(
    policy: RetryPolicy,
    attempt: int,
    retry_after: float | None,
    *,
    rand: Callable[[], float] = random.random,
) -> float:
    """Wait after a 429: ``Retry-After`` when given, else at least ``rate_limit_delay``."""
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER)
    return max(policy.rate_limit_delay, delay(policy, attempt, rand=rand))


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
