"""The sandbox says no the way ilert does: unknown heartbeat and integration keys once seeded,
unknown users and policies, and a plain-text 404 for a URL that is not ilert's."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from helpers import plant_three
from ilagent.sandbox import parse_seed

LIVE = "ih2:900:acme:live:hash0001"
DELETED = "ih2:900:acme:gone:hash0002"
SOURCE = "il1apiKNOWN00000001"
OTHER = "il1apiOTHER00000002"
API_KEY = "refusals-api-key-0001"


async def seed(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(f"{url}/sandbox/seed", json=body) as response:
        assert response.status == 201, await response.text()
        return dict(await response.json())


async def answer(
    http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, str, bytes]:
    """Status, content type and raw body of one request."""
    async with http.request(method, url, **kwargs) as response:
        return response.status, response.content_type, await response.read()


async def test_every_heartbeat_key_is_accepted_while_none_is_seeded(
    http: aiohttp.ClientSession, sandbox_url: str
) -> None:
    """Without seeded heartbeat keys any key is pinged with 202, as the demo expects."""
    for method in ("HEAD", "GET"):
        status, _, _ = await answer(http, method, f"{sandbox_url}/api/pings/{DELETED}")
        assert status == 202


async def test_a_ping_for_a_key_not_seeded_is_404_without_body_on_head(
    http: aiohttp.ClientSession, sandbox_url: str
) -> None:
    """Once heartbeat keys are seeded, another key is 404: no body on HEAD, ilert's error body
    on GET and POST (pings and legacy heartbeats alike); a seeded key still gets 202."""
    body = await seed(http, sandbox_url, {"heartbeatKeys": [LIVE, "il1hbtLIVE0000001"]})
    assert body["heartbeatKeys"] == 2
    status, _, raw = await answer(http, "HEAD", f"{sandbox_url}/api/pings/{DELETED}")
    assert (status, raw) == (404, b"")
    for method, path in (("GET", f"/api/pings/{DELETED}"),
                         ("GET", "/api/heartbeats/il1hbtGONE0000001"),
                         ("POST", "/api/v1/heartbeats/il1hbtGONE0000001")):
        async with http.request(method, sandbox_url + path) as response:
            assert response.status == 404
            error = await response.json()
        assert (error["status"], error["code"]) == (404, "NOT_FOUND") and error["message"]
    for method, path in (("HEAD", f"/api/pings/{LIVE.replace(':', '%3A')}"),
                         ("GET", "/api/heartbeats/il1hbtLIVE0000001")):
        status, _, _ = await answer(http, method, sandbox_url + path)
        assert status == 202


async def test_a_reset_goes_back_to_the_startup_heartbeat_keys(
    http: aiohttp.ClientSession, sandbox_factory: Any
) -> None:
    """Keys seeded at start stay after a reset; keys seeded later are forgotten by it."""
    url = (await sandbox_factory(seed=parse_seed({"heartbeatKeys": [LIVE]}))).url
    await seed(http, url, {"heartbeatKeys": [DELETED]})
    assert (await answer(http, "HEAD", f"{url}/api/pings/{DELETED}"))[0] == 202
    async with http.delete(f"{url}/sandbox") as response:
        assert response.status == 200
    assert (await answer(http, "HEAD", f"{url}/api/pings/{DELETED}"))[0] == 404
    assert (await answer(http, "HEAD", f"{url}/api/pings/{LIVE}"))[0] == 202


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        (f"/api/v1/events/kafka/{OTHER}", {}, 404, "NOT_FOUND"),
        ("/api/events", {"integrationKey": OTHER}, 400, "INVALID_INTEGRATION_KEY"),
        ("/api/v1/events", {"apiKey": OTHER}, 400, "INVALID_INTEGRATION_KEY"),
    ],
)
async def test_an_event_for_an_integration_key_not_seeded_is_refused(
    http: aiohttp.ClientSession, sandbox_url: str, path: str, body: dict[str, Any],
    status: int, code: str,
) -> None:
    """Once integration keys are seeded, an event for another key is refused with ilert's
    error body (404 for a key in the path, 400 for one in the body) and opens no alert; an
    event for a seeded key is taken."""
    await seed(http, sandbox_url, {"integrationKeys": [SOURCE]})
    event = {"eventType": "ALERT", "summary": "disk full", **body}
    async with http.post(sandbox_url + path, json=event) as response:
        assert response.status == status
        error = await response.json()
    assert (error["status"], error["code"]) == (status, code)
    async with http.get(f"{sandbox_url}/sandbox/alerts") as response:
        assert await response.json() == []
    async with http.post(f"{sandbox_url}/api/v1/events/kafka/{SOURCE}",
                         json={"eventType": "ALERT", "summary": "disk full"}) as response:
        assert response.status == 202


async def test_a_wrong_path_is_a_plain_text_404_and_is_recorded(
    http: aiohttp.ClientSession, sandbox_url: str
) -> None:
    """A URL below /api that ilert does not serve is a plain-text 404, as a web server in front
    of a wrong URL answers (not ilert's JSON error body); it is still recorded for the page. A
    known path with a wrong method stays 405 with ilert's error body."""
    status, content_type, raw = await answer(
        http, "POST", f"{sandbox_url}/api/v2/users/search-email", json={"email": "a@b"})
    assert (status, content_type) == (404, "text/plain")
    assert raw == b"404: Not Found"
    status, content_type, _ = await answer(http, "HEAD", f"{sandbox_url}/api/pingz/{LIVE}")
    assert status == 404
    async with http.get(f"{sandbox_url}/api/events") as response:
        assert response.status == 405
        assert (await response.json())["code"] == "METHOD_NOT_ALLOWED"
    async with http.get(f"{sandbox_url}/sandbox/requests") as response:
        wrong, head, method = await response.json()
    assert (wrong["method"], wrong["path"], wrong["status"]) == (
        "POST", "/api/v2/users/search-email", 404)
    assert wrong["answer"] == "404: Not Found"
    assert (head["method"], head["status"], method["status"]) == ("HEAD", 404, 405)


async def test_unknown_users_and_policies_are_404_with_ilerts_error_body(
    http: aiohttp.ClientSession, sandbox_url: str
) -> None:
    """An unknown e-mail, routing key, policy or level is 404 with ilert's JSON error body
    (code NOT_FOUND), which a client can tell from a wrong URL's plain-text 404."""
    await seed(http, sandbox_url, plant_three(API_KEY))
    auth = {"Authorization": f"Bearer {API_KEY}"}
    calls = [
        ("POST", "/api/users/search-email", {"email": "nobody@example.com"}),
        ("GET", "/api/escalation-policies/resolve?routing-key=atlantis", None),
        ("PUT", "/api/escalation-policies/99/levels/0", {"escalationTimeout": 1, "users": []}),
        ("PUT", "/api/escalation-policies/3/levels/7", {"escalationTimeout": 1, "users": []}),
    ]
    for method, path, body in calls:
        async with http.request(method, sandbox_url + path, json=body,
                                headers=auth) as response:
            assert (response.status, response.content_type) == (404, "application/json")
            error = await response.json()
        assert set(error) == {"status", "message", "code"}
        assert (error["status"], error["code"]) == (404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("seed_body", "message"),
    [
        ({"heartbeatKeys": "k"}, "'heartbeatKeys' must be a list"),
        ({"heartbeatKeys": [""]}, "'heartbeatKeys[0]' must be a non-empty string"),
        ({"integrationKeys": [7]}, "'integrationKeys[0]' must be a non-empty string"),
    ],
)
async def test_a_seed_with_bad_keys_is_400(
    http: aiohttp.ClientSession, sandbox_url: str, seed_body: dict[str, Any], message: str
) -> None:
    """Heartbeat and integration keys must be lists of non-empty strings; else 400 naming it."""
    async with http.post(f"{sandbox_url}/sandbox/seed", json=seed_body) as response:
        assert response.status == 400
        error = await response.json()
    assert error["code"] == "INVALID_SEED" and message in error["message"]
