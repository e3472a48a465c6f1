"""The sandbox's pure bookkeeping: rate-limit windows and scripted-fault selection, on a fake clock."""

from __future__ import annotations

import pytest

from ilagent.sandbox.faults import (
    FaultBook,
    FaultError,
    FaultSpec,
    FixedWindowLimiter,
    Target,
    parse_fault,
)
from ilagent.sandbox.store import mask

EVENT = Target("POST", "/api/events", "key")
LEVEL_UPDATE = Target("PUT", "/api/escalation-policies/3/levels/1")
USER_SEARCH = Target("POST", "/api/users/search-email")
RESOLVE = Target("GET", "/api/escalation-policies/resolve")


def keyed(key: str | None) -> Target:
    return Target("POST", "/api/events", key)


@pytest.mark.parametrize(
    ("hits_at", "expected"),
    [
        ([0.0, 1.0, 2.0], [True, True, False]),
        ([0.0, 1.0, 59.9, 60.0], [True, True, False, True]),
        ([0.0, 30.0, 90.0, 95.0, 96.0], [True, True, True, True, False]),
    ],
)
def test_window_opens_at_first_hit_and_lasts_a_minute(
    hits_at: list[float], expected: list[bool]
) -> None:
    """A key gets `limit` hits per 60 s window, and a new window starts once that has passed."""
    limiter = FixedWindowLimiter(2)
    assert [limiter.allow("k", now=now) for now in hits_at] == expected


def test_keys_have_separate_windows() -> None:
    """One key over its limit does not limit another key."""
    limiter = FixedWindowLimiter(1)
    assert [limiter.allow("a", now=0.0), limiter.allow("a", now=1.0)] == [True, False]
    assert limiter.allow("b", now=1.0)


def test_fault_with_count_applies_that_many_times() -> None:
    """A counted fault is taken by exactly `count` requests, then is gone."""
    book = FaultBook()
    book.add(FaultSpec(status=503, count=2), now=0.0)
    taken = [book.take(EVENT, now=0.0) for _ in range(3)]
    assert [fault is not None for fault in taken] == [True, True, False]
    assert book.list(now=0.0) == []


def test_fault_expires_and_matches_its_key_only() -> None:
    """A fault applies only to its integration key and only until its duration has passed."""
    book = FaultBook()
    book.add(FaultSpec(status=429, duration_s=10.0, integration_key="k1"), now=100.0)
    assert book.take(keyed("k2"), now=101.0) is None
    assert book.take(keyed(None), now=101.0) is None
    assert book.take(keyed("k1"), now=109.9) is not None
    assert book.take(keyed("k1"), now=110.0) is None


def test_oldest_matching_fault_is_applied_first() -> None:
    """When several faults match, the oldest one answers; the next takes over when it is spent."""
    book = FaultBook()
    book.add(FaultSpec(status=500, count=1), now=0.0)
    book.add(FaultSpec(status=502), now=0.0)
    statuses = [
        fault.spec.status for fault in (book.take(EVENT, now=0.0) for _ in range(3)) if fault
    ]
    assert statuses == [500, 502, 502]


def test_parse_fault_defaults() -> None:
    """A minimal fault body gets no latency, no expiry, no key/method/path scope and no count."""
    assert parse_fault({"status": 503}) == FaultSpec(status=503)
    assert parse_fault({"latency_ms": 5, "duration_s": 1}).duration_s == 1.0


@pytest.mark.parametrize(
    ("scope", "target", "matches"),
    [
        ({}, LEVEL_UPDATE, True),
        ({"method": "PUT"}, LEVEL_UPDATE, True),
        ({"method": "put"}, LEVEL_UPDATE, True),
        ({"method": "PUT"}, USER_SEARCH, False),
        ({"method": "GET"}, Target("HEAD", "/api/escalation-policies/resolve"), False),
        ({"path": "/api/users/search-email"}, USER_SEARCH, True),
        ({"path": "/api/users/search-email"}, Target("POST", "/api/users/search-email/x"), False),
        ({"path": "/api/escalation-policies/*"}, RESOLVE, True),
        ({"path": "/api/escalation-policies/*"}, LEVEL_UPDATE, True),
        ({"path": "/api/escalation-policies/*"}, USER_SEARCH, False),
        ({"path": "/api/escalation-policies/*/levels/*"}, LEVEL_UPDATE, True),
        ({"path": "/api/escalation-policies/*/levels/*"}, RESOLVE, False),
        ({"path": "/api/escalation-policies/3/levels/?"}, LEVEL_UPDATE, True),
        ({"path": "/api/escalation-policies/4/levels/*"}, LEVEL_UPDATE, False),
        ({"path": "*/levels/*", "method": "PUT"}, LEVEL_UPDATE, True),
        ({"path": "*/levels/*", "method": "POST"}, LEVEL_UPDATE, False),
        ({"path": "/api/events"}, EVENT, True),
        ({"path": "/API/events"}, EVENT, False),
        ({"integration_key": "key", "method": "POST"}, EVENT, True),
        ({"integration_key": "key", "path": "/api/events"}, keyed("other"), False),
        ({"integration_key": "key"}, LEVEL_UPDATE, False),
    ],
)
def test_fault_scopes_combine_with_and(
    scope: dict[str, str], target: Target, matches: bool
) -> None:
    """A fault applies only when its key, method (any case) and path glob all admit a request."""
    assert parse_fault({"status": 503, **scope}).matches(target) is matches


def test_scoped_fault_leaves_other_requests_and_its_count_alone() -> None:
    """Requests outside a fault's scope are not faulted and do not use up its count."""
    book = FaultBook()
    book.add(parse_fault({"status": 503, "method": "PUT", "count": 1}), now=0.0)
    assert book.take(USER_SEARCH, now=0.0) is None
    assert book.take(RESOLVE, now=0.0) is None
    assert book.take(LEVEL_UPDATE, now=0.0) is not None
    assert book.take(LEVEL_UPDATE, now=0.0) is None


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"status": 503, "method": 1}, "'method' must be a string"),
        ({"status": 503, "method": "P UT"}, "'method' must be an HTTP method"),
        ({"status": 503, "method": ""}, "'method' must be an HTTP method"),
        ({"status": 503, "path": "api/events"}, "'path' must start with '/'"),
        ({"status": 503, "path": ["/api"]}, "'path' must be a string"),
        ({"status": 503, "paths": "/api"}, "unknown field(s) paths"),
    ],
)
def test_parse_fault_refuses_bad_scopes(body: dict[str, object], complaint: str) -> None:
    """A method that is not a word or a path not starting with '/' or '*' is refused, by name."""
    with pytest.raises(FaultError) as error:
        parse_fault(body)
    assert complaint in str(error.value)


@pytest.mark.parametrize(
    ("key", "masked"),
    [
        ("il1api0123456789", "************6789"),
        ("123456789", "*****6789"),
        ("12345678", "********"),
        ("", ""),
    ],
)
def test_mask_keeps_last_four_of_long_keys_only(key: str, masked: str) -> None:
    """Keys longer than 8 characters show their last 4; shorter ones are hidden entirely."""
    assert mask(key) == masked
