"""One outcome per answer of ilert: what is retried, what is thrown away."""

from __future__ import annotations

import pytest

from ilagent.ilert import Outcome, classify


@pytest.mark.parametrize(("status", "outcome"), [
    (200, Outcome.DELIVERED), (202, Outcome.DELIVERED),
    (429, Outcome.RATE_LIMITED),
    (500, Outcome.RETRY), (503, Outcome.RETRY), (408, Outcome.RETRY),
    (301, Outcome.RETRY), (302, Outcome.RETRY), (307, Outcome.RETRY), (407, Outcome.RETRY),
    (400, Outcome.REJECTED), (401, Outcome.REJECTED), (404, Outcome.REJECTED),
    (413, Outcome.REJECTED),
])
def test_status_to_outcome(status: int, outcome: Outcome) -> None:
    """A redirect or a proxy asking for credentials is a setting to fix, not a bad event: retried."""
    assert classify(status) is outcome
