"""One outcome per answer of ilert: what is retried, what is thrown away."""

from __future__ import annotations

from typing import Any

import pytest

from ilagent.ilert import IlertClient, Outcome, classify


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


async def test_a_404_without_ilerts_body_is_a_wrong_url_and_retried(sandbox: Any) -> None:
    """Posting below the sandbox's root instead of /api: a 404 that is not ilert's, retried;
    a 404 with ilert's error body stays a rejection."""
    root = str(sandbox.make_url("")).rstrip("/")
    async with IlertClient(api_url=root, beat_url=root, timeout=5) as client:
        result = await client.post_event("/v1/events/kafka/il1apiX", b'{"eventType":"ALERT"}')
    assert (result.outcome, result.status) == (Outcome.RETRY, 404)
    response = await sandbox.post("/sandbox/faults", json={"status": 404, "count": 1})
    assert response.status in (200, 201)
    async with IlertClient(api_url=f"{root}/api", beat_url=root, timeout=5) as client:
        result = await client.post_event("/events", b'{"eventType":"ALERT"}')
    assert (result.outcome, result.status) == (Outcome.REJECTED, 404)
