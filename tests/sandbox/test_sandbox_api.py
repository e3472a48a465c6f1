"""The sandbox answers like ilert's event and heartbeat API, against a real local server."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import pytest

KEY = "il1api0000000000000001"
OTHER_KEY = "il1api0000000000000002"


def event(event_type: str = "ALERT", key: str | None = KEY, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"eventType": event_type, **fields}
    if key is not None:
        body["integrationKey"] = key
    if event_type == "ALERT":
        body.setdefault("summary", "disk full on db-1")
    return body


async def post(
    http: aiohttp.ClientSession, url: str, body: Any, path: str = "/api/events"
) -> tuple[int, Any, Any]:
    async with http.post(url + path, json=body) as response:
        return response.status, await response.json(), response.headers


async def get(http: aiohttp.ClientSession, url: str, path: str) -> Any:
    async with http.get(url + path) as response:
        assert response.status == 200, await response.text()
        return await response.json()


# -- validation and answers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"eventType": "ALERT", "summary": "x"}, "integrationKey"),
        ({"integrationKey": None, "eventType": "ALERT", "summary": "x"}, "integrationKey"),
        ({"integrationKey": KEY, "summary": "x"}, "eventType"),
        ({"integrationKey": KEY, "eventType": "ALERT"}, "summary"),
        ({"integrationKey": KEY, "eventType": "alert", "summary": "x"}, "eventType"),
        ({"integrationKey": KEY, "eventType": "PAGE", "summary": "x"}, "eventType"),
    ],
)
async def test_invalid_event_is_400_naming_the_field(
    http: aiohttp.ClientSession, sandbox_url: str, body: dict[str, Any], field: str
) -> None:
    """An invalid event is answered 400 with ilert's {status, message, code} naming the field."""
    status, answer, _ = await post(http, sandbox_url, body)
    assert status == 400
    assert set(answer) == {"status", "message", "code"}
    assert answer["status"] == 400
    assert field in answer["message"]


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b'"ALERT"'])
async def test_body_that_is_not_a_json_object_is_400(
    http: aiohttp.ClientSession, sandbox_url: str, raw: bytes
) -> None:
    """A body that is not a JSON object is answered 400 with the ilert error body."""
    headers = {"Content-Type": "application/json"}
    async with http.post(f"{sandbox_url}/api/events", data=raw, headers=headers) as response:
        assert response.status == 400
        answer = await response.json()
    assert answer["status"] == 400 and answer["code"] and answer["message"]


async def test_alert_is_202_with_correlation_id_and_alert_url(
    http: aiohttp.ClientSession, sandbox_url: str
) -> None:
    """An ALERT is answered 202 {alertKey, alertUrl, responseCode} with a correlation-id header."""
    status, answer, headers = await post(http, sandbox_url, event(alertKey="db-1/disk"))
    assert status == 202
    assert answer["alertKey"] == "db-1/disk"
    assert answer["responseCode"] == "NEW_ALERT_CREATED"
    assert answer["alertUrl"].startswith(f"{sandbox_url}/#alert-")
    assert len(headers["correlation-id"]) == 36


async def test_alert_without_key_gets_a_generated_one(
    http: aiohttp.ClientSession, sandbox_url: str
) -> None:
    """An ALERT without alertKey opens an alert whose generated key later events can use."""
    _, answer, _ = await post(http, sandbox_url, event())
    assert len(answer["alertKey"]) == 32
    status, accepted, _ = await post(
        http, sandbox_url, event("ACCEPT", alertKey=answer["alertKey"])
    )
    assert (status, accepted["responseCode"]) == (202, "ALERT_ACCEPTED")


async def test_alert_with_key_of_open_alert_is_appended(
    http: aiohttp.ClientSession, sandbox_url: str
) -> None:
    """A second ALERT with the key of an open alert is appended to it, not a new alert."""
    await post(http, sandbox_url, event(alertKey="k1", summary="first"))
    status, answer, _ = await post(http, sandbox_url, event(alertKey="k1", summary="second"))
    assert (status, answer["responseCode"]) == (202, "EVENT_APPENDED")
    alerts = await get(http, sandbox_url, "/sandbox/alerts")
    assert len(alerts) == 1
    assert alerts[0]["eventCount"] == 2
    assert alerts[0]["summary"] == "first"
    assert len(alerts[0]["events"]) == 2
    assert alerts[0]["lastAt"] >= alerts[0]["firstAt"]


async def test_alert_keys_match_case_insensitively_after_trim(
    http: aiohttp.ClientSession, sandbox_url: str
) -> None:
    """Alert keys are matched trimmed and case-insensitively, as ilert compares them."""
    await post(http, sandbox_url, event(alertKey="Srv/Mail01"))
    _, appended, _ = await post(http, sandbox_url, event(alertKey="  srv/MAIL01 "))
    _, accepted, _ = await post(http, sandbox_url, event("ACCEPT", alertKey="SRV/mail01"))
    assert appended["responseCode"] == "EVENT_APPENDED"
    assert accepted["responseCode"] == "ALERT_ACCEPTED"
    assert len(await get(http, sandbox_url, "/sandbox/alerts")) == 1


@pytest.mark.parametrize("event_type", ["ACCEPT", "RESOLVE", "COMMENT"])
async def test_event_for_missing_alert_is_400_no_open_alert(
    http: aiohttp.ClientSession, sandbox_url: str, event_type: str
) -> None:
    """ACCEPT, RESOLVE or COMMENT with no open alert for the key is 400 NO_OPEN_ALERT_WITH_KEY."""
    status, answer, _ = await post(http, sandbox_url, event(event_type, alertKey="nothing-here"))
    assert status == 400
    assert answer == {"status": 400, "message": answer["message"], "code": "NO_OPEN_ALERT_WITH_KEY"}
    assert await get(http, sandbox_url, "/sandbox/alerts") == []


async def test_lifecycle_then_new_alert_after_resolve(
    http: aiohttp.ClientSession, sandbox_url: str
) -> None:
    """An alert goes PENDING -> ACCEPTED -> RESOLVED, and the next ALERT opens a new alert."""
    codes = []
    for event_type, status in [
        ("ALERT", "PENDING"),
        ("ACCEPT", "ACCEPTED"),
        ("RESOLVE", "RESOLVED"),
    ]:
        _, answer, _ = await post(http, sandbox_url, event(event_type, alertKey="life"))
        codes.append(answer["responseCode"])
        [alert] = await get(http, sandbox_url, "/sandbox/alerts")
        assert alert["status"] == status
    assert codes == ["NEW_ALERT_CREATED", "ALERT_ACCEPTED", "ALERT_RESOLVED"]
    status, answer, _ = await post(http, sandbox_url, event("RESOLVE", alertKey="life"))
    assert (status, answer["code"]) == (400, "NO_OPEN_ALERT_WITH_KEY")
    _, answer, _ = await post(http, sandbox_url, event(alertKey="life"))
    assert answer["responseCode"] == "NEW_ALERT_CREATED"
    newest, oldest = await get(http, sandbox_url, "/sandbox/alerts")
    assert (newest["status"], oldest["status"]) == ("PENDING", "RESOLVED")
    assert newest["id"] > oldest["id"]
    pending = await get(http, sandbox_url, "/sandbox/alerts?status=pending")
    assert [alert["id"] for alert in pending] == [newest["id"]]


async def test_comment_is_added_to_open_alert(
    http: aiohttp.ClientSession, sandbox_url: str
) -> None:
    """A COMMENT is added to the open alert without changing its status."""
    await post(http, sandbox_url, event(alertKey="c"))
    comments = [{"content": "looking into it"}]
    _, answer, _ = await post(http, sandbox_url, event("COMMENT", alertKey="c", comments=comments))
    assert answer["responseCode"] == "COMMENT_ADDED"
    [alert] = await get(http, sandbox_url, "/sandbox/alerts")
    assert (alert["status"], alert["eventCount"]) == ("PENDING", 2)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/events", {"apiKey": KEY, "eventType": "ALERT", "summary": "legacy"}),
        (f"/api/v1/events/kafka/{KEY}", {"eventType": "ALERT", "summary": "path key"}),
        (
            f"/api/v1/events/mqtt/{KEY}",
            {"integrationKey": None, "eventType": "ALERT", "summary": "x"},
        ),
        (f"/api/v1/kafka/{KEY}", {"eventType": "ALERT", "summary": "ilert's Kafka guide"}),
    ],
)
async def test_every_event_route_takes_legacy_and_path_keys(
    http: aiohttp.ClientSession, sandbox_url: str, path: str, body: dict[str, Any]
) -> None:
    """Every event route accepts the body key, legacy apiKey, or the path key when the body has none."""
    status, _, _ = await post(http, sandbox_url, body, path=path)
    assert status == 202
    [accepted] = await get(http, sandbox_url, f"/sandbox/events?integration_key={KEY}")
    assert accepted["body"] == body
    assert accepted["integrationKey"] == "*" * (len(KEY) - 4) + KEY[-4:]
    assert KEY not in accepted["path"]


async def test_requests_are_recorded_with_masked_key(
    http: aiohttp.ClientSession, sandbox_url: str
) -> None:
    """Every /api request is recorded with status, body, answer and user agent, its key masked."""
    headers = {"User-Agent": "ilagent-py/test"}
    async with http.post(f"{sandbox_url}/api/events", json=event(), headers=headers):
        pass
    await post(http, sandbox_url, {"eventType": "ALERT"})
    async with http.get(f"{sandbox_url}/api/nowhere") as response:
        assert response.status == 404
    async with http.get(f"{sandbox_url}/api/events") as response:
        assert response.status == 405
    first, second, third, fourth = await get(http, sandbox_url, "/sandbox/requests")
    assert (first["status"], first["userAgent"], first["body"]) == (202, "ilagent-py/test", event())
    assert first["integrationKey"] == "******************0001"
    assert first["answer"]["responseCode"] == "NEW_ALERT_CREATED"
    assert (second["status"], second["integrationKey"]) == (400, None)
    assert second["answer"]["code"] == "MISSING_FIELD"
    assert (third["method"], third["path"], third["status"]) == ("GET", "/api/nowhere", 404)
    assert (fourth["path"], fourth["status"]) == ("/api/events", 405)
    since_first = await get(http, sandbox_url, f"/sandbox/requests?since={first['seq']}")
    assert [r["seq"] for r in since_first] == [second["seq"], third["seq"], fourth["seq"]]
    stats = await get(http, sandbox_url, "/sandbox/stats")
    assert stats == {
        "accepted": 1,
        "rejected": 3,
        "byStatus": {"202": 1, "400": 1, "404": 1, "405": 1},
        "inFlight": 0,
    }


async def test_events_can_be_read_since_a_seq(
    http: aiohttp.ClientSession, sandbox_url: str
) -> None:
    """/sandbox/events lists accepted events only, after ?since= and for ?integration_key=."""
    await post(http, sandbox_url, event(alertKey="a"))
    await post(http, sandbox_url, event("ACCEPT", alertKey="missing"))  # rejected: not listed
    await post(http, sandbox_url, event(key=OTHER_KEY, alertKey="b"))
    first, second = await get(http, sandbox_url, "/sandbox/events")
    assert second["seq"] > first["seq"]
    assert await get(http, sandbox_url, f"/sandbox/events?since={first['seq']}") == [second]
    assert await get(http, sandbox_url, f"/sandbox/events?integration_key={OTHER_KEY}") == [second]
    async with http.get(f"{sandbox_url}/sandbox/events?since=soon") as response:
        assert (response.status, (await response.json())["code"]) == (400, "INVALID_PARAMETER")


async def test_integration_keys_never_logged_in_clear(
    http: aiohttp.ClientSession, sandbox_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No log line of the sandbox carries an integration key in clear."""
    caplog.set_level(logging.DEBUG, logger="ilagent")
    await post(http, sandbox_url, event(alertKey="log"))
    await post(http, sandbox_url, {"eventType": "ALERT"}, path=f"/api/v1/events/kafka/{KEY}")
    async with http.post(
        f"{sandbox_url}/sandbox/faults", json={"status": 503, "integration_key": KEY}
    ):
        pass
    await post(http, sandbox_url, event(alertKey="log"))
    assert caplog.records
    assert KEY not in caplog.text


# -- rate limits ------------------------------------------------------------------------------


async def test_51st_event_in_window_is_429_without_retry_after(
    http: aiohttp.ClientSession, sandbox_factory: Any
) -> None:
    """With rate limiting on, the 51st event of a key in its minute is 429 with no Retry-After."""
    url = (await sandbox_factory(rate_limit=True)).url
    for n in range(50):
        status, _, _ = await post(http, url, event(alertKey=f"k{n}"))
        assert status == 202, n
    status, answer, headers = await post(http, url, event(alertKey="one too many"))
    assert status == 429
    assert answer["status"] == 429 and answer["code"] and answer["message"]
    assert "Retry-After" not in headers
    status, _, _ = await post(http, url, event(key=OTHER_KEY))
    assert status == 202, "another integration key has its own window"
    assert len(await get(http, url, "/sandbox/alerts")) == 51


async def test_rate_limit_is_configurable(
    http: aiohttp.ClientSession, sandbox_factory: Any
) -> None:
    """rate_limit_per_minute sets how many events a key may send per window."""
    url = (await sandbox_factory(rate_limit=True, rate_limit_per_minute=2)).url
    statuses = [(await post(http, url, event()))[0] for _ in range(3)]
    assert statuses == [202, 202, 429]


async def test_6th_ping_in_window_is_429(http: aiohttp.ClientSession, sandbox_factory: Any) -> None:
    """With rate limiting on, a heartbeat key gets 5 pings per minute, then 429."""
    url = (await sandbox_factory(rate_limit=True)).url
    statuses = []
    for _ in range(6):
        async with http.get(f"{url}/api/pings/ih2-key-1") as response:
            statuses.append(response.status)
    assert statuses == [202] * 5 + [429]
    async with http.get(f"{url}/api/pings/ih2-key-2") as response:
        assert response.status == 202


# -- heartbeats -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/heartbeats/{key}"),
        ("HEAD", "/api/heartbeats/{key}"),
        ("POST", "/api/heartbeats/{key}"),
        ("GET", "/api/v1/heartbeats/{key}"),
        ("HEAD", "/api/v1/heartbeats/{key}"),
        ("POST", "/api/v1/heartbeats/{key}"),
        ("GET", "/api/pings/{key}"),
        ("HEAD", "/api/pings/{key}"),
    ],
)
async def test_heartbeat_paths_answer_202_and_count(
    http: aiohttp.ClientSession, sandbox_url: str, method: str, path: str
) -> None:
    """Every heartbeat path and method answers 202 ({} unless HEAD) and counts the ping."""
    url = sandbox_url + path.format(key="il1hbt000000001")
    for _ in range(2):
        async with http.request(method, url) as response:
            assert response.status == 202
            assert await response.read() == (b"" if method == "HEAD" else b"{}")
    [beat] = await get(http, sandbox_url, "/sandbox/heartbeats?key=il1hbt000000001")
    assert (beat["key"], beat["count"]) == ("***********0001", 2)
    assert beat["lastPingAt"] >= beat["firstPingAt"]


async def test_ping_key_is_percent_decoded(http: aiohttp.ClientSession, sandbox_url: str) -> None:
    """A ping key sent percent-encoded (ilert-cli sends ':' as %3A) is counted decoded."""
    url = f"{sandbox_url}/api/pings/ih2%3A900%3Aacme%3Aabc%3Ahash1234"
    async with http.get(url) as response:
        assert response.status == 202
    [beat] = await get(http, sandbox_url, "/sandbox/heartbeats?key=ih2:900:acme:abc:hash1234")
    assert beat["count"] == 1


# -- scripted faults --------------------------------------------------------------------------


async def add_fault(http: aiohttp.ClientSession, url: str, **fault: Any) -> int:
    async with http.post(f"{url}/sandbox/faults", json=fault) as response:
        assert response.status == 201, await response.text()
        return int((await response.json())["id"])


async def test_fault_answers_status_for_next_n_requests(
    http: aiohttp.ClientSession, sandbox_url: str
) -> None:
    """A fault with count answers its status to the next N requests, which change no alert."""
    await add_fault(http, sandbox_url, status=503, count=2, retry_after="7")
    answers = [await post(http, sandbox_url, event(alertKey="f")) for _ in range(3)]
    assert [status for status, _, _ in answers] == [503, 503, 202]
    assert answers[0][1]["status"] == 503
    assert answers[0][2]["Retry-After"] == "7"
    [alert] = await get(http, sandbox_url, "/sandbox/alerts")
    assert alert["eventCount"] == 1
    statuses = [r["status"] for r in await get(http, sandbox_url, "/sandbox/requests")]
    assert statuses == [503, 503, 202]
    assert await get(http, sandbox_url, "/sandbox/faults") == []


async def test_fault_only_for_one_integration_key(
    http: aiohttp.ClientSession, sandbox_url: str
) -> None:
    """A fault with integration_key hits only that key's events, body or path keyed."""
    await add_fault(http, sandbox_url, status=429, integration_key=OTHER_KEY)
    assert (await post(http, sandbox_url, event()))[0] == 202
    assert (await post(http, sandbox_url, event(key=OTHER_KEY)))[0] == 429
    path = f"/api/v1/events/kafka/{OTHER_KEY}"
    assert (await post(http, sandbox_url, {"eventType": "ALERT", "summary": "x"}, path=path))[
        0
    ] == 429
    [listed] = await get(http, sandbox_url, "/sandbox/faults")
    assert listed["integration_key"] == "*" * (len(OTHER_KEY) - 4) + OTHER_KEY[-4:]


async def test_latency_fault_delays_then_handles(
    http: aiohttp.ClientSession, sandbox_url: str, wait_until: Any
) -> None:
    """A latency-only fault holds the request (counted in flight), then handles it normally."""
    await add_fault(http, sandbox_url, latency_ms=300, count=1)
    started = time.monotonic()
    held = asyncio.create_task(post(http, sandbox_url, event()))

    async def in_flight() -> bool:
        return bool((await get(http, sandbox_url, "/sandbox/stats"))["inFlight"] == 1)

    await wait_until(in_flight, what="the held request to show in stats")
    assert await get(http, sandbox_url, "/sandbox/requests") == []
    status, answer, _ = await held
    assert time.monotonic() - started >= 0.3
    assert (status, answer["responseCode"]) == (202, "NEW_ALERT_CREATED")
    assert (await get(http, sandbox_url, "/sandbox/stats"))["inFlight"] == 0


async def test_fault_with_status_and_latency_applies_both(
    http: aiohttp.ClientSession, sandbox_url: str
) -> None:
    """A fault with status and latency waits first, then answers its status (heartbeats too)."""
    await add_fault(http, sandbox_url, status=502, latency_ms=200)
    started = time.monotonic()
    async with http.head(f"{sandbox_url}/api/pings/ih2-key") as response:
        assert response.status == 502
    assert time.monotonic() - started >= 0.2
    assert await get(http, sandbox_url, "/sandbox/heartbeats") == []


async def test_fault_expires_after_duration(
    http: aiohttp.ClientSession, sandbox_url: str, wait_until: Any
) -> None:
    """A fault with duration_s stops applying once that time has passed."""
    started = time.monotonic()
    await add_fault(http, sandbox_url, status=503, duration_s=0.3)
    assert (await post(http, sandbox_url, event()))[0] == 503

    async def accepted_again() -> bool:
        return (await post(http, sandbox_url, event()))[0] == 202

    await wait_until(accepted_again, what="the fault to expire")
    assert time.monotonic() - started >= 0.3


async def test_delete_faults_clears_them(http: aiohttp.ClientSession, sandbox_url: str) -> None:
    """DELETE /sandbox/faults drops every fault at once."""
    await add_fault(http, sandbox_url, status=500)
    await add_fault(http, sandbox_url, status=503, integration_key=KEY)
    assert len(await get(http, sandbox_url, "/sandbox/faults")) == 2
    async with http.delete(f"{sandbox_url}/sandbox/faults") as response:
        assert await response.json() == {"cleared": 2}
    assert (await post(http, sandbox_url, event()))[0] == 202


@pytest.mark.parametrize(
    "fault",
    [{}, {"status": "503"}, {"status": 42}, {"latency": 10}, {"latency_ms": -1}, {"count": 0}],
)
async def test_invalid_fault_is_400(
    http: aiohttp.ClientSession, sandbox_url: str, fault: dict[str, Any]
) -> None:
    """A fault body with a wrong, unknown or missing field is refused with 400."""
    async with http.post(f"{sandbox_url}/sandbox/faults", json=fault) as response:
        assert response.status == 400
        assert (await response.json())["code"] == "INVALID_FAULT"


# -- persistence and reset --------------------------------------------------------------------


async def test_sqlite_state_survives_restart(
    http: aiohttp.ClientSession, sandbox_factory: Any, tmp_path: Any
) -> None:
    """With db_path, alerts, events, requests, heartbeats and counters survive a restart."""
    db = str(tmp_path / "sandbox.db")
    first = await sandbox_factory(db_path=db)
    await post(http, first.url, event(alertKey="persist"))
    await post(http, first.url, event("ACCEPT", alertKey="persist"))
    async with http.get(f"{first.url}/api/heartbeats/il1hbt-persist") as response:
        assert response.status == 202
    await first.stop()

    second = await sandbox_factory(db_path=db)
    [alert] = await get(http, second.url, "/sandbox/alerts")
    assert (alert["status"], alert["eventCount"]) == ("ACCEPTED", 2)
    _, answer, _ = await post(http, second.url, event("RESOLVE", alertKey="PERSIST"))
    assert answer["responseCode"] == "ALERT_RESOLVED", "the open alert was reloaded"
    _, answer, _ = await post(http, second.url, event(alertKey="persist"))
    assert answer["alertUrl"].endswith(f"#alert-{alert['id'] + 1}")
    assert len(await get(http, second.url, "/sandbox/events")) == 4
    assert len(await get(http, second.url, "/sandbox/requests")) == 5
    [beat] = await get(http, second.url, "/sandbox/heartbeats")
    assert beat["count"] == 1
    assert (await get(http, second.url, "/sandbox/stats"))["accepted"] == 5


async def test_reset_forgets_everything(http: aiohttp.ClientSession, sandbox_url: str) -> None:
    """DELETE /sandbox forgets alerts, events, requests, heartbeats, counters and faults."""
    await post(http, sandbox_url, event(alertKey="r"))
    async with http.get(f"{sandbox_url}/api/pings/ih2-reset") as response:
        assert response.status == 202
    await add_fault(http, sandbox_url, status=503, integration_key=OTHER_KEY)
    async with http.delete(f"{sandbox_url}/sandbox") as response:
        assert response.status == 200
    for path in ("alerts", "events", "requests", "heartbeats", "faults"):
        assert await get(http, sandbox_url, f"/sandbox/{path}") == [], path
    assert await get(http, sandbox_url, "/sandbox/stats") == {
        "accepted": 0,
        "rejected": 0,
        "byStatus": {},
        "inFlight": 0,
    }
    _, answer, _ = await post(http, sandbox_url, event(alertKey="r"))
    assert answer["responseCode"] == "NEW_ALERT_CREATED"
