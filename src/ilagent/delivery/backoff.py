"""Retry delays (pure): exponential backoff with full jitter."""

from __future__ import annotations

import random
from collections.abc import Callable

from ilagent.config import MAX_RETRY_AFTER, RetryPolicy


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
