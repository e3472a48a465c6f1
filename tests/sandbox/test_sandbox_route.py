"""The sandbox records which ilagent route sent each event: the ``X-Ilagent-Route`` request
header, never the body; bounded, printable, shown as ``route`` (null without one)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ilagent.sandbox.records import MAX_ROUTE_LENGTH, ROUTE_HEADER, route_of
from ilagent.sandbox.store import SCHEMA_VERSION, Store

KEY = "il1apiroute00000000001"


async def post_event(http: aiohttp.ClientSession, url: str, *, alert_key: str,
                     header: str | None = None, **extra: Any) -> int:
    """POST an ALERT (``extra``: more body fields), with ``header`` as X-Ilagent-Route."""
    headers = {ROUTE_HEADER: header} if header is not None else {}
    body = {"eventType": "ALERT", "summary": "door open", "alertKey": alert_key, **extra}
    async with http.post(f"{url}/api/v1/events/kafka/{KEY}", json=body,
                         headers=headers) as response:
        return response.status


async def get(http: aiohttp.ClientSession, url: str, path: str) -> Any:
    async with http.get(url + path) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_an_event_carries_the_route_its_header_named(
        http: aiohttp.ClientSession, sandbox_url: str) -> None:
    """With X-Ilagent-Route: line3 the event and its request show route "line3"; without the
    header route is null, also when the body has a "route" field of its own."""
    assert await post_event(http, sandbox_url, alert_key="a", header="line3") == 202
    assert await post_event(http, sandbox_url, alert_key="b") == 202
    assert await post_event(http, sandbox_url, alert_key="c", header=" line3 ",
                            route_in_body="x", **{"X-Ilagent-Route": "from-body"}) == 202
    events = await get(http, sandbox_url, "/sandbox/events")
    assert [(e["body"]["alertKey"], e["route"]) for e in events] == [
        ("a", "line3"), ("b", None), ("c", "line3")]
    requests = await get(http, sandbox_url, "/sandbox/requests")
    assert [r["route"] for r in requests] == ["line3", None, "line3"]
    assert await post_event(http, sandbox_url, alert_key="d",
                            **{"X-Ilagent-Route": "from-body", "route": "from-body"}) == 202
    [last] = await get(http, sandbox_url, f"/sandbox/events?since={events[-1]['seq']}")
    assert last["route"] is None


async def test_a_refused_event_keeps_its_route_on_the_request(
        http: aiohttp.ClientSession, sandbox_url: str) -> None:
    """A 400 (no summary) stores no event, and its recorded request still names the route."""
    async with http.post(f"{sandbox_url}/api/v1/events/kafka/{KEY}",
                         json={"eventType": "ALERT"}, headers={ROUTE_HEADER: "line7"}) as response:
        assert response.status == 400
    assert await get(http, sandbox_url, "/sandbox/events") == []
    [request] = await get(http, sandbox_url, "/sandbox/requests")
    assert (request["status"], request["route"]) == (400, "line7")


@pytest.mark.parametrize(("header", "route"), [
    pytest.param("line3", "line3", id="plain"),
    pytest.param("  plant/line 3  ", "plant/line 3", id="trimmed"),
    pytest.param("x" * MAX_ROUTE_LENGTH, "x" * MAX_ROUTE_LENGTH, id="longest"),
    pytest.param("x" * (MAX_ROUTE_LENGTH + 1), None, id="too-long"),
    pytest.param("a\tb", None, id="control-character"),
    pytest.param("\udce4", None, id="undecodable"),
    pytest.param("   ", None, id="blank"),
    pytest.param(None, None, id="absent"),
])
def test_only_a_short_printable_header_is_a_route(header: str | None, route: str | None) -> None:
    """At most 100 printable characters (trimmed) make a route; anything else is none."""
    assert route_of(header) == route


async def test_a_header_the_sandbox_would_not_show_is_ignored(
        http: aiohttp.ClientSession, sandbox_url: str) -> None:
    """Over 100 characters: the event is taken, with no route."""
    assert await post_event(http, sandbox_url, alert_key="a", header="r" * 101) == 202
    [event] = await get(http, sandbox_url, "/sandbox/events")
    assert event["route"] is None


def test_a_file_of_the_schema_before_routes_is_migrated(tmp_path: Path) -> None:
    """A --db file of schema 1 opens: its events and requests show route null, new ones keep
    theirs."""
    path = tmp_path / "sandbox.db"
    with sqlite3.connect(path) as db:
        db.executescript("""
            CREATE TABLE events (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, path TEXT NOT NULL,
                integration_key TEXT NOT NULL, event_type TEXT NOT NULL,
                alert_id INTEGER NOT NULL, body TEXT NOT NULL);
            CREATE TABLE requests (seq INTEGER PRIMARY KEY, at TEXT NOT NULL,
                method TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL, body TEXT,
                user_agent TEXT, integration_key TEXT, answer TEXT);
            INSERT INTO events VALUES (1, 't', '/api/events', 'k', 'ALERT', 1, '{}');
            INSERT INTO requests VALUES (1, 't', 'POST', '/api/events', 202, '{}', NULL, NULL,
                '{}');
            PRAGMA user_version = 1;
        """)
    db.close()
    store = Store.open(str(path))
    try:
        assert [e["route"] for e in store.events()] == [None]
        assert [r["route"] for r in store.requests()] == [None]
        store.insert_event(at="t", path="/api/events", integration_key="k", event_type="ALERT",
                           alert_id=1, body={}, text="{}", route="line3")
        assert [e["route"] for e in store.events()] == [None, "line3"]
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()
