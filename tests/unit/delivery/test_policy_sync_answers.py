"""Policy sync against the sandbox app as ilert: what is dead-lettered and what is retried."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ilagent.delivery.policy_sync import PolicySync
from ilagent.ilert import IlertClient, Outcome
from ilagent.mapping.policy import PolicyUpdate
from ilagent.metrics import Metrics

API_KEY = "unit-policy-key-0001"
SEED = {
    "apiKeys": [API_KEY],
    "users": [{"id": 7, "email": "ann@example.com"}, {"id": 8, "email": "bob@example.com"}],
    "policies": [{"id": 3, "routingKey": "plant50",
                  "escalationRules": [{"escalationTimeout": 5, "users": [{"id": 7}]}]}],
}


def update(email: str = "bob@example.com", routing_key: str = "plant50",
           level: int = 0) -> PolicyUpdate:
    return PolicyUpdate(routing_key=routing_key, email=email, level=level)


@pytest.fixture
async def seeded(sandbox: Any) -> Any:
    response = await sandbox.post("/sandbox/seed", json=SEED)
    assert response.status == 201, await response.text()
    return sandbox


@pytest.fixture
async def sync(seeded: Any) -> AsyncIterator[PolicySync]:
    url = str(seeded.make_url("/api"))
    async with IlertClient(api_url=url, timeout=5, api_key=API_KEY) as client:
        yield PolicySync(client=client, metrics=Metrics())


async def test_a_wrong_api_url_is_retried_not_dead_lettered(seeded: Any) -> None:
    """A wrong API URL answered with a plain-text 404 holds the update (retried): it is not
    mistaken for "no such user"."""
    wrong = str(seeded.make_url("/api/v2"))
    async with IlertClient(api_url=wrong, timeout=5, api_key=API_KEY) as client:
        result = await PolicySync(client=client, metrics=Metrics()).apply(update())
    assert (result.outcome, result.status, result.reason) == (Outcome.RETRY, 404, "")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (update(email="nobody@example.com"), "user_not_found"),
        (update(routing_key="atlantis50"), "policy_not_found"),
        (update(level=4), "level_not_found"),
    ],
)
async def test_what_ilert_says_is_missing_is_dead_lettered_with_its_name(
    sync: PolicySync, change: PolicyUpdate, reason: str
) -> None:
    """A 404 with ilert's error body names what is missing: user, policy or level."""
    result = await sync.apply(change)
    assert (result.outcome, result.reason) == (Outcome.REJECTED, reason)


async def test_a_level_that_vanished_on_the_put_is_level_not_found(
    seeded: Any, sync: PolicySync
) -> None:
    """ilert answering the level update itself with 404 (its error body) is level_not_found."""
    response = await seeded.post("/sandbox/faults", json={
        "status": 404, "method": "PUT", "path": "/api/escalation-policies/*", "count": 1})
    assert response.status == 201
    result = await sync.apply(update())
    assert (result.outcome, result.reason) == (Outcome.REJECTED, "level_not_found")
    assert (await sync.apply(update())).outcome is Outcome.DELIVERED
