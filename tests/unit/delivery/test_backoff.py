"""Retry delays: exponential with full jitter, the 429 floor and Retry-After parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ilagent.config import MAX_RETRY_AFTER, RetryPolicy
from ilagent.delivery.backoff import delay, rate_limited_delay
from ilagent.ilert import parse_retry_after


@pytest.mark.parametrize(("attempt", "expected_cap"), [
    (1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (100, 60.0), (0, 1.0),
])
def test_delay_doubles_up_to_the_cap(attempt: int, expected_cap: float) -> None:
    """The upper bound of the jittered delay is base·2ⁿ⁻¹, never above the cap."""
    policy = RetryPolicy(initial_delay=1.0, max_delay=60.0)
    assert delay(policy, attempt, rand=lambda: 1.0) == expected_cap
    assert delay(policy, attempt, rand=lambda: 0.0) == 0.0


def test_delay_is_full_jitter() -> None:
    """The delay is a uniform fraction of the bound (full jitter), not the bound itself."""
    policy = RetryPolicy(initial_delay=1.0, max_delay=60.0)
    assert delay(policy, 3, rand=lambda: 0.25) == 1.0


@pytest.mark.parametrize(("retry_after", "rand", "expected"), [
    (None, 0.0, 10.0),  # no header: at least the 429 floor
    (None, 1.0, 10.0),  # attempt 3 bound is 4 s, still below the floor
    (3.0, 1.0, 3.0),  # the header wins, even below the floor
    (1e6, 0.0, MAX_RETRY_AFTER),  # absurd headers are capped
])
def test_rate_limited_delay(retry_after: float | None, rand: float, expected: float) -> None:
    """A 429 waits Retry-After when given, else at least the rate-limit delay."""
    policy = RetryPolicy(rate_limit_delay=10.0)
    assert rate_limited_delay(policy, 3, retry_after, rand=lambda: rand) == expected


NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("header", "expected"), [
    (None, None), ("", None), ("soon", None), ("12", 12.0), (" 7 ", 7.0),
    ("Fri, 27 Nov 2026 12:00:30 GMT", 30.0),
    ("Fri, 27 Nov 2026 11:59:00 GMT", 0.0),  # a date in the past means now
    ("99999", MAX_RETRY_AFTER),
])
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    """Retry-After is read as delta-seconds or an HTTP-date; junk is ignored."""
    assert parse_retry_after(header, now=NOW) == expected
