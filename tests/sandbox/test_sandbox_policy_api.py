"""The sandbox answers ilagent's three policy-sync calls as ilert does, against a real local server.

Requests are made exactly as ilagent 0.9 makes them (its consumers/policy.rs): search the user
by e-mail, resolve the policy by routing key, put the user on the level of the shift.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import pytest

from helpers import BOB, plant_three

API_KEY = "sandbox-user-api-key-0001"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
SEED = plant_three(API_KEY)
SEARCH = "/api/users/search-email"
RESOLVE = "/api/escalation-policies/resolve?routing-key=powerplantthree50"
LEVEL_1 = "/api/escalation-policies/3/levels/1"
BOB_ON_LEVEL_1 = {"escalationTimeout": 10, "users": [{"id": 8}]}


async def call(
    http: aiohttp.ClientSession,
    url: str,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One ilert API call with the seeded key (unless ``headers`` says otherwise)."""
    async with http.request(
        method, url + path, json=body, headers=AUTH if headers is None else headers
    ) as response:
        return response.status, await response.json()


async def sandbox_get(http: aiohttp.ClientSession, url: str, path: str) -> Any:
    async with http.get(url + path) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def seed(http: aiohttp.ClientSession, url: str, body: Any = SEED) -> tuple[int, Any]:
    async with http.post(f"{url}/sandbox/seed", json=body) as response:
        return response.status, await response.json()


@pytest.fixture
async def seeded(sandbox_url: str, http: aiohttp.ClientSession) -> str:
    """A sandbox seeded with Ann, Bob, policy 3 (two levels, Ann on both) and API_KEY."""
    status, _ = await seed(http, sandbox_url)
    assert status == 201
    return sandbox_url


def level_emails(policy: dict[str, Any], index: int) -> list[str]:
    return [user["email"] for user in policy["escalationRules"][index]["users"]]


# -- the three calls --------------------------------------------------------------------------


async def test_the_three_calls_move_a_user_onto_a_level(
    http: aiohttp.ClientSession, seeded: str
) -> None:
    """Search, resolve and level update as ilagent sends them put Bob on level 1, and say so."""
    status, user = await call(http, seeded, "POST", SEARCH, {"email": "bob@example.com"})
    assert (status, user) == (200, BOB)
    status, policy = await call(http, seeded, "GET", RESOLVE)
    assert status == 200
    assert (policy["id"], policy["routingKey"], policy["name"]) == (
        3,
        "powerplantthree50",
        "Plant three",
    )
    assert [rule["escalationTimeout"] for rule in policy["escalationRules"]] == [5, 10]
    body = {"escalationTimeout": 10, "users": [{"id": user["id"]}]}
    status, rule = await call(http, seeded, "PUT", LEVEL_1, body)
    assert (status, rule) == (
        200,
        {"escalationTimeout": 10, "users": [BOB], "schedules": [], "teams": []},
    )
    [after] = await sandbox_get(http, seeded, "/sandbox/policies")
    assert (level_emails(after, 0), level_emails(after, 1)) == (
        ["ann@example.com"],
        ["bob@example.com"],
    )
    assert after["updatedAt"]


async def test_policy_calls_are_recorded_and_counted(
    http: aiohttp.ClientSession, seeded: str
) -> None:
    """Each policy call is recorded (path with query, body, answer) and counted in the stats."""
    await call(http, seeded, "POST", SEARCH, {"email": "nobody@example.com"})
    await call(http, seeded, "GET", RESOLVE)
    await call(http, seeded, "PUT", LEVEL_1, BOB_ON_LEVEL_1)
    search, resolve, update = await sandbox_get(http, seeded, "/sandbox/requests")
    assert (search["method"], search["path"], search["status"]) == ("POST", SEARCH, 404)
    assert search["body"] == {"email": "nobody@example.com"}
    assert search["answer"]["code"] == "NOT_FOUND"
    assert (resolve["method"], resolve["path"], resolve["status"]) == ("GET", RESOLVE, 200)
    assert (update["method"], update["path"], update["body"]) == ("PUT", LEVEL_1, BOB_ON_LEVEL_1)
    assert update["integrationKey"] is None
    stats = await sandbox_get(http, seeded, "/sandbox/stats")
    assert stats["byStatus"] == {"200": 2, "404": 1}


@pytest.mark.parametrize(
    ("method", "path", "body", "needle"),
    [
        ("POST", SEARCH, {"email": "carol@example.com"}, "carol@example.com"),
        ("GET", "/api/escalation-policies/resolve?routing-key=plant9", None, "plant9"),
        ("PUT", "/api/escalation-policies/4/levels/0", BOB_ON_LEVEL_1, "id 4"),
        ("PUT", "/api/escalation-policies/3/levels/2", BOB_ON_LEVEL_1, "no level 2"),
    ],
)
async def test_what_is_not_there_is_404_naming_it(
    http: aiohttp.ClientSession,
    seeded: str,
    method: str,
    path: str,
    body: Any,
    needle: str,
) -> None:
    """An unknown e-mail, routing key, policy or level is 404 {status, message, code: NOT_FOUND}."""
    status, answer = await call(http, seeded, method, path, body)
    assert status == 404
    assert (answer["status"], answer["code"]) == (404, "NOT_FOUND")
    assert needle in answer["message"]


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        ("POST", SEARCH, {}, "MISSING_FIELD"),
        ("POST", SEARCH, {"email": ""}, "MISSING_FIELD"),
        ("GET", "/api/escalation-policies/resolve", None, "MISSING_FIELD"),
        ("PUT", LEVEL_1, {"users": [{"id": 8}]}, "MISSING_FIELD"),
        ("PUT", LEVEL_1, {"escalationTimeout": 10, "users": [{"id": 99}]}, "INVALID_FIELD"),
    ],
)
async def test_malformed_policy_call_is_400(
    http: aiohttp.ClientSession, seeded: str, method: str, path: str, body: Any, code: str
) -> None:
    """A call without e-mail, routing key or timeout, or naming an unknown user id, is 400."""
    before = await sandbox_get(http, seeded, "/sandbox/policies")
    status, answer = await call(http, seeded, method, path, body)
    assert (status, answer["status"], answer["code"]) == (400, 400, code)
    assert await sandbox_get(http, seeded, "/sandbox/policies") == before


async def test_level_update_body_that_is_not_json_is_400(
    http: aiohttp.ClientSession, seeded: str
) -> None:
    """A level update whose body is not JSON is 400 INVALID_BODY."""
    headers = {**AUTH, "Content-Type": "application/json"}
    async with http.put(seeded + LEVEL_1, data=b"{nope", headers=headers) as response:
        assert response.status == 400
        assert (await response.json())["code"] == "INVALID_BODY"


async def test_other_methods_on_policy_paths_are_405(
    http: aiohttp.ClientSession, seeded: str
) -> None:
    """GET on the level path or the search path is 405, recorded like any other /api request."""
    assert (await call(http, seeded, "GET", LEVEL_1))[0] == 405
    assert (await call(http, seeded, "GET", SEARCH))[0] == 405


# -- the Bearer key ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "hint"),
    [
        ({}, "Authorization: Bearer"),
        ({"Authorization": API_KEY}, "Authorization: Bearer"),
        ({"Authorization": f"Basic {API_KEY}"}, "Authorization: Bearer"),
        ({"Authorization": "Bearer "}, "Authorization: Bearer"),
        ({"Authorization": "Bearer another-key"}, "not valid"),
        ({"Authorization": f"Bearer {API_KEY}x"}, "not valid"),
    ],
)
async def test_missing_or_wrong_bearer_key_is_401(
    http: aiohttp.ClientSession, seeded: str, headers: dict[str, str], hint: str
) -> None:
    """Each call without 'Authorization: Bearer <seeded key>' is 401 UNAUTHORIZED, changing nothing."""
    for method, path, body in (
        ("POST", SEARCH, {"email": "bob@example.com"}),
        ("GET", RESOLVE, None),
        ("PUT", LEVEL_1, BOB_ON_LEVEL_1),
    ):
        status, answer = await call(http, seeded, method, path, body, headers=headers)
        assert (status, answer["status"], answer["code"]) == (401, 401, "UNAUTHORIZED"), path
        assert hint in answer["message"]
    [policy] = await sandbox_get(http, seeded, "/sandbox/policies")
    assert level_emails(policy, 1) == ["ann@example.com"]


async def test_bearer_scheme_is_case_insensitive(http: aiohttp.ClientSession, seeded: str) -> None:
    """'bearer <key>' is accepted like 'Bearer <key>' (the scheme is case-insensitive)."""
    headers = {"Authorization": f"bearer {API_KEY}"}
    assert (await call(http, seeded, "GET", RESOLVE, headers=headers))[0] == 200


async def test_without_any_seeded_key_every_call_is_401_saying_how_to_seed(
    http: aiohttp.ClientSession, sandbox_url: str
) -> None:
    """A sandbox with no API key refuses every policy call and says how to give it one."""
    status, answer = await call(http, sandbox_url, "GET", RESOLVE)
    assert status == 401
    assert "--api_key" in answer["message"] and "/sandbox/seed" in answer["message"]


async def test_api_key_from_config_survives_reset(
    http: aiohttp.ClientSession, sandbox_factory: Any
) -> None:
    """Keys and policies of the startup seed (--api_key, --seed) are back after a reset."""
    from ilagent.sandbox import parse_seed

    url = (await sandbox_factory(seed=parse_seed(SEED))).url
    assert (await call(http, url, "PUT", LEVEL_1, BOB_ON_LEVEL_1))[0] == 200
    status, _ = await seed(http, url, {"apiKeys": ["later-key"], "users": [{"email": "c@x"}]})
    assert status == 201
    async with http.delete(f"{url}/sandbox") as response:
        assert response.status == 200
    [policy] = await sandbox_get(http, url, "/sandbox/policies")
    assert level_emails(policy, 1) == ["ann@example.com"]
    assert [user["id"] for user in await sandbox_get(http, url, "/sandbox/users")] == [7, 8]
    assert (await call(http, url, "GET", RESOLVE))[0] == 200
    later = {"Authorization": "Bearer later-key"}
    assert (await call(http, url, "GET", RESOLVE, headers=later))[0] == 401


async def test_calls_over_a_keys_minute_limit_are_429(
    http: aiohttp.ClientSession, sandbox_factory: Any
) -> None:
    """With rate limiting on, an API key gets its per-minute number of calls, then 429."""
    url = (await sandbox_factory(rate_limit=True, api_rate_limit_per_minute=3)).url
    await seed(http, url, {**SEED, "apiKeys": [API_KEY, "second-key"]})
    statuses = [(await call(http, url, "GET", RESOLVE))[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    second = {"Authorization": "Bearer second-key"}
    assert (await call(http, url, "GET", RESOLVE, headers=second))[0] == 200


# -- seeding and inspection -------------------------------------------------------------------


async def test_seed_answers_what_it_added_with_ids(
    http: aiohttp.ClientSession, sandbox_url: str
) -> None:
    """POST /sandbox/seed answers 201 with the users and policies added (ids assigned) and the
    number of API keys, never the keys themselves."""
    body = {
        "apiKeys": [API_KEY],
        "users": [{"email": "dana@example.com"}],
        "policies": [
            {"routingKey": "rk", "escalationRules": [{"users": [{"email": "dana@example.com"}]}]}
        ],
    }
    status, answer = await seed(http, sandbox_url, body)
    assert status == 201
    assert answer["apiKeys"] == 1
    assert answer["users"] == [
        {"id": 1, "firstName": "", "lastName": "", "email": "dana@example.com"}
    ]
    [policy] = answer["policies"]
    assert (policy["id"], policy["name"], policy["routingKey"]) == (1, "Policy 1", "rk")
    assert level_emails(policy, 0) == ["dana@example.com"]
    assert API_KEY not in str(answer)
    assert await sandbox_get(http, sandbox_url, "/sandbox/policies?routing_key=rk") == [policy]
    assert await sandbox_get(http, sandbox_url, "/sandbox/policies?routing_key=none") == []


NEW_USER = {"email": "new@example.com"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"users": [NEW_USER, {"id": 7, "email": "x@example.com"}]}, 409, "SEED_CONFLICT"),
        (
            {"users": [NEW_USER], "policies": [{"routingKey": "powerplantthree50"}]},
            409,
            "SEED_CONFLICT",
        ),
        (
            {"users": [NEW_USER], "policies": [{"escalationRules": [{"users": [{"id": 42}]}]}]},
            400,
            "INVALID_SEED",
        ),
        ({"users": [NEW_USER, {"mail": "x@example.com"}]}, 400, "INVALID_SEED"),
        ([NEW_USER], 400, "INVALID_SEED"),
    ],
)
async def test_bad_seed_is_refused_whole(
    http: aiohttp.ClientSession, seeded: str, body: Any, status: int, code: str
) -> None:
    """A seed that conflicts (409) or is malformed (400) adds nothing, not even its good parts."""
    before = await sandbox_get(http, seeded, "/sandbox/users")
    answer_status, answer = await seed(http, seeded, body)
    assert (answer_status, answer["code"]) == (status, code)
    assert await sandbox_get(http, seeded, "/sandbox/users") == before


async def test_seed_that_is_not_json_is_400(http: aiohttp.ClientSession, sandbox_url: str) -> None:
    """A seed body that is not JSON is 400 INVALID_SEED."""
    async with http.post(f"{sandbox_url}/sandbox/seed", data=b"{") as response:
        assert response.status == 400
        assert (await response.json())["code"] == "INVALID_SEED"


async def test_reset_clears_what_was_seeded(http: aiohttp.ClientSession, seeded: str) -> None:
    """DELETE /sandbox forgets seeded users, policies and API keys (none were given at start)."""
    async with http.delete(f"{seeded}/sandbox") as response:
        assert response.status == 200
    assert await sandbox_get(http, seeded, "/sandbox/policies") == []
    assert await sandbox_get(http, seeded, "/sandbox/users") == []
    assert (await call(http, seeded, "GET", RESOLVE))[0] == 401


async def test_api_keys_never_logged(
    http: aiohttp.ClientSession, seeded: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No log line of the sandbox carries a seeded or presented API key."""
    caplog.set_level(logging.DEBUG, logger="ilagent")
    await seed(http, seeded, {"apiKeys": ["another-secret-key"]})
    await call(http, seeded, "PUT", LEVEL_1, BOB_ON_LEVEL_1)
    await call(http, seeded, "GET", RESOLVE, headers={"Authorization": "Bearer wrong-secret-key"})
    assert caplog.records
    for secret in (API_KEY, "another-secret-key", "wrong-secret-key"):
        assert secret not in caplog.text


# -- faults on the policy calls ---------------------------------------------------------------


async def add_fault(http: aiohttp.ClientSession, url: str, **fault: Any) -> dict[str, Any]:
    async with http.post(f"{url}/sandbox/faults", json=fault) as response:
        assert response.status == 201, await response.text()
    async with http.get(f"{url}/sandbox/faults") as response:
        return dict((await response.json())[-1])


async def test_fault_scoped_to_level_updates_leaves_lookups_alone(
    http: aiohttp.ClientSession, seeded: str, wait_until: Any
) -> None:
    """A 503 fault for PUT on the level path fails only the update, until its duration ends;
    then the update lands once."""
    started = time.monotonic()  # before the fault: its 0.5 s run from when it is added
    listed = await add_fault(
        http,
        seeded,
        status=503,
        method="put",
        path="/api/escalation-policies/*/levels/*",
        duration_s=0.5,
    )
    assert (listed["method"], listed["path"]) == ("PUT", "/api/escalation-policies/*/levels/*")
    assert (await call(http, seeded, "POST", SEARCH, {"email": "bob@example.com"}))[0] == 200
    assert (await call(http, seeded, "GET", RESOLVE))[0] == 200
    status, answer = await call(http, seeded, "PUT", LEVEL_1, BOB_ON_LEVEL_1)
    assert (status, answer["code"]) == (503, "SANDBOX_FAULT")
    [policy] = await sandbox_get(http, seeded, "/sandbox/policies")
    assert level_emails(policy, 1) == ["ann@example.com"], "a faulted update changes nothing"

    async def landed() -> bool:
        return (await call(http, seeded, "PUT", LEVEL_1, BOB_ON_LEVEL_1))[0] == 200

    await wait_until(landed, what="the fault to expire")
    assert time.monotonic() - started >= 0.5
    [policy] = await sandbox_get(http, seeded, "/sandbox/policies")
    assert level_emails(policy, 1) == ["bob@example.com"]
    statuses = [r["status"] for r in await sandbox_get(http, seeded, "/sandbox/requests")]
    assert statuses[:2] == [200, 200] and set(statuses[2:-1]) == {503} and statuses[-1] == 200


@pytest.mark.parametrize(
    ("scope", "faulted"),
    [
        ({}, [SEARCH, RESOLVE, LEVEL_1]),
        ({"path": SEARCH}, [SEARCH]),
        ({"method": "GET"}, [RESOLVE]),
        ({"path": "/api/escalation-policies/*"}, [RESOLVE, LEVEL_1]),
        ({"integration_key": "il1api0000000000000001"}, []),
    ],
)
async def test_faults_reach_the_policy_calls_by_method_and_path(
    http: aiohttp.ClientSession, seeded: str, scope: dict[str, str], faulted: list[str]
) -> None:
    """Unscoped faults hit the policy calls too; method and path scopes pick which; a fault
    scoped to an integration key never hits them (they carry none)."""
    await add_fault(http, seeded, status=502, **scope)
    answered = {}
    for method, path, body in (
        ("POST", SEARCH, {"email": "bob@example.com"}),
        ("GET", RESOLVE, None),
        ("PUT", LEVEL_1, BOB_ON_LEVEL_1),
    ):
        answered[path] = (await call(http, seeded, method, path, body))[0]
    assert [path for path, status in answered.items() if status == 502] == faulted
    assert all(status == 200 for path, status in answered.items() if path not in faulted)


async def test_latency_fault_holds_a_level_update(http: aiohttp.ClientSession, seeded: str) -> None:
    """A latency fault scoped to PUT delays the level update, which then lands."""
    await add_fault(http, seeded, latency_ms=300, method="PUT", count=1)
    started = time.monotonic()
    held = asyncio.create_task(call(http, seeded, "PUT", LEVEL_1, BOB_ON_LEVEL_1))
    assert (await call(http, seeded, "GET", RESOLVE))[0] == 200
    assert time.monotonic() - started < 0.3, "the lookup was not held"
    assert (await held)[0] == 200
    assert time.monotonic() - started >= 0.3
