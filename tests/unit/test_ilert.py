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


LIVE = "ih2:900:acme:live:hash0001"
DELETED = "ih2:900:acme:gone:hash0002"
LEGACY_LIVE = "il1hbtLIVE00000001"
LEGACY_DELETED = "il1hbtGONE00000002"


async def seed(sandbox: Any, **body: Any) -> None:
    response = await sandbox.post("/sandbox/seed", json=body)
    assert response.status == 201, await response.text()


async def test_a_head_404_is_a_deleted_heartbeat_once_the_beat_url_has_worked(
    sandbox: Any, ilert: IlertClient
) -> None:
    """A ping to an unknown key answered 404 without a body (HEAD) is a wrong URL (retried)
    until that beat URL has answered 2xx for some key; from then on it is a dead letter with
    the reason heartbeat_not_found."""
    await seed(sandbox, heartbeatKeys=[LIVE])
    before = await ilert.ping_heartbeat(DELETED)
    assert (before.outcome, before.status) == (Outcome.RETRY, 404)
    assert (await ilert.ping_heartbeat(LIVE)).outcome is Outcome.DELIVERED
    after = await ilert.ping_heartbeat(DELETED)
    assert (after.outcome, after.status, after.reason) == (
        Outcome.REJECTED, 404, "heartbeat_not_found")


async def test_a_beat_url_that_never_worked_keeps_retrying_its_404s(sandbox: Any) -> None:
    """A wrong beat URL (a plain 404 for every key) stays a wrong URL even after the API host's
    legacy heartbeats worked: the knowledge is per base URL."""
    api = str(sandbox.make_url("/api"))
    wrong = str(sandbox.make_url("/api/v2"))
    await seed(sandbox, heartbeatKeys=[LIVE, LEGACY_LIVE])
    async with IlertClient(api_url=api, beat_url=wrong, timeout=5) as client:
        assert (await client.ping_heartbeat(LEGACY_LIVE)).outcome is Outcome.DELIVERED
        for key in (LIVE, DELETED):
            result = await client.ping_heartbeat(key)
            assert (result.outcome, result.status, result.reason) == (Outcome.RETRY, 404, "")


async def test_a_legacy_heartbeat_404_with_ilerts_body_is_not_found_at_once(
    sandbox: Any, ilert: IlertClient
) -> None:
    """A GET on a legacy heartbeat answered 404 with ilert's error body is heartbeat_not_found
    straight away: ilert itself says the key does not exist."""
    await seed(sandbox, heartbeatKeys=[LEGACY_LIVE])
    result = await ilert.ping_heartbeat(LEGACY_DELETED)
    assert (result.outcome, result.status, result.reason) == (
        Outcome.REJECTED, 404, "heartbeat_not_found")


async def test_policy_calls_tell_a_wrong_url_from_ilerts_not_found(sandbox: Any) -> None:
    """On the three policy calls a plain-text 404 (a wrong URL) is retried; a 404 with ilert's
    error body is a rejection with the reason not_found."""
    await seed(sandbox, apiKeys=["unit-api-key-0001"], users=[{"id": 7, "email": "a@b.c"}],
               policies=[{"id": 3, "routingKey": "rk", "escalationRules": [{"users": []}]}])
    rule: dict[str, object] = {"escalationTimeout": 1, "users": [{"id": 7}]}
    wrong = str(sandbox.make_url("/api/v2"))
    async with IlertClient(api_url=wrong, timeout=5, api_key="unit-api-key-0001") as client:
        results = [(await client.find_user("a@b.c"))[0], (await client.resolve_policy("rk"))[0],
                   (await client.update_level(3, 0, rule))[0]]
    assert [(r.outcome, r.status, r.reason) for r in results] == [(Outcome.RETRY, 404, "")] * 3
    right = str(sandbox.make_url("/api"))
    async with IlertClient(api_url=right, timeout=5, api_key="unit-api-key-0001") as client:
        results = [(await client.find_user("nobody@b.c"))[0],
                   (await client.resolve_policy("atlantis"))[0],
                   (await client.update_level(3, 5, rule))[0]]
    assert [(r.outcome, r.status, r.reason) for r in results] == [
        (Outcome.REJECTED, 404, "not_found")] * 3


async def test_the_last_transient_failure_is_kept_for_the_local_fallback(
        sandbox: Any, ilert: IlertClient) -> None:
    """A 503 is kept with its status and an excerpt; a network error by its kind; an accepted
    event or a rejection keeps what was there (lastError of the fallback's notices)."""
    assert ilert.last_failure == ""
    response = await sandbox.post("/sandbox/faults", json={"status": 503, "count": 1})
    assert response.status in (200, 201)
    await ilert.post_event("/v1/events/kafka/il1apiX", b'{"eventType":"ALERT","summary":"x"}')
    assert ilert.last_failure.startswith("HTTP 503 ") and "scripted fault" in ilert.last_failure
    await ilert.post_event("/v1/events/kafka/il1apiX", b'{"eventType":"ALERT","summary":"x"}')
    assert ilert.last_failure.startswith("HTTP 503 ")
    async with IlertClient(api_url="http://127.0.0.1:9/api", beat_url="http://127.0.0.1:9/api",
                           timeout=5) as unreachable:
        result = await unreachable.post_event("/events", b"{}")
    assert result.outcome is Outcome.RETRY
    assert unreachable.last_failure == "cannot connect to 127.0.0.1:9: Connection refused"


async def test_an_answer_later_than_the_timeout_is_retried(sandbox: Any) -> None:
    """ilert holding its answer for a minute: the client gives up after its total timeout
    (0.5 s here) and the event is retried, as a network error without a status."""
    response = await sandbox.post("/sandbox/faults", json={"latency_ms": 60_000, "count": 1})
    assert response.status in (200, 201)
    url = str(sandbox.make_url("/api"))
    async with IlertClient(api_url=url, beat_url=url, timeout=0.5) as client:
        result = await client.post_event("/v1/events/kafka/il1apiX", b'{"eventType":"ALERT"}')
    assert (result.outcome, result.status) == (Outcome.RETRY, None)
    assert "timeout" in result.detail.lower(), result.detail
    assert result.elapsed is not None and 0.4 < result.elapsed < 3
