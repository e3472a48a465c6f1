"""Fuzzing the intake of a real daemon: whatever arrives, the answer is a clear 202 or 4xx."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import pytest
from http_daemon import start_daemon
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import Sandbox, status_or_none
from ilagent.events import EventError, validate_event

MAX_BODY = 65536
JSON_TYPES = (
    None,
    "application/json",
    "application/json; charset=utf-8",
    "application/problem+json",
)
OTHER_TYPES = (
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; b=x",
    "application/xml",
    "",
    ";;;",
    "application/",
    "*/*",
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
items = st.lists(
    st.dictionaries(
        st.sampled_from(["src", "href", "alt", "text", "content", "creator", "id", "alias"]), values
    ),
    max_size=3,
)
fields: dict[str, Any] = {
    "integrationKey": st.text(max_size=20) | values,
    "apiKey": st.text(max_size=20) | values,
    "eventType": st.sampled_from(["ALERT", "ACCEPT", "RESOLVE", "COMMENT", "alert"]) | values,
    "summary": st.text(max_size=40) | values,
    "details": st.text() | values,
    "alertKey": st.text(max_size=20) | values,
    "routingKey": st.text(max_size=10) | values,
    "priority": st.sampled_from(["HIGH", "LOW", "MEDIUM"]) | values,
    "severity": st.integers(-1, 7) | values,
    "images": items | values,
    "links": items | values,
    "comments": items | values,
    "services": items | values,
    "labels": st.dictionaries(st.text(max_size=8), st.text(max_size=8) | values) | values,
    "customDetails": values,
}
events = st.fixed_dictionaries({}, optional=fields)
nesting = st.integers(1, 3000)
bodies = st.one_of(
    events.map(lambda e: json.dumps(e).encode()),
    values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=500),
    nesting.map(lambda n: b"[" * n + b"]" * n),
    nesting.map(
        lambda n: (
            b'{"integrationKey":"k","eventType":"ALERT","summary":"s",'
            b'"customDetails":' + b'{"a":' * n + b"1" + b"}" * (n + 1)
        )
    ),
    st.integers(MAX_BODY - 100, 3 * MAX_BODY).map(
        lambda n: json.dumps(
            {"integrationKey": "k", "eventType": "ALERT", "summary": "s", "details": "x" * n}
        ).encode()
    ),
)
content_types = st.sampled_from(JSON_TYPES + OTHER_TYPES)
paths = st.sampled_from(["/api/events", "/api/v1/events", "/api/v1/events/fuzz/il1apiFUZZ0000"])


def post(base: str, path: str, data: bytes, content_type: str | None) -> tuple[int, Any]:
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Content-Type": content_type} if content_type is not None else {}
    try:
        connection.request("POST", path, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def expected_status(path: str, data: bytes, content_type: str | None) -> int | None:
    """What ilert's rules say for a JSON request that fits (None: no cheap prediction)."""
    if content_type not in JSON_TYPES or len(data) > MAX_BODY:
        return None
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return 400
    if (
        isinstance(body, dict)
        and path.endswith("FUZZ0000")
        and body.get("integrationKey") is None
        and body.get("apiKey") is None
    ):
        body = {**body, "integrationKey": "il1apiFUZZ0000"}
    try:
        validate_event(body)
    except EventError:
        return 400
    return 202


@pytest.fixture
def intake(sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> tuple[Any, str]:
    return start_daemon(run_ilagent, tmp_path / "q.db3", "--http_max_body", str(MAX_BODY))


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(path=paths, data=bodies, content_type=content_types)
def test_every_answer_is_a_clear_202_or_4xx(
    intake: tuple[Any, str], path: str, data: bytes, content_type: str | None
) -> None:
    """Malformed, mistyped, huge or deeply nested bodies get 202 or a JSON 4xx, never a 5xx."""
    daemon, base = intake
    status, body = post(base, path, data, content_type)
    assert status in (202, 400, 413, 415), (status, body)
    if status == 202:
        assert body["status"] == "queued" and body["id"].isdigit()
    else:
        assert body["status"] == status and body["code"] and body["message"], body
    if content_type not in JSON_TYPES:
        assert status == 415
    elif len(data) > MAX_BODY:
        assert status == 413
    predicted = expected_status(path, data, content_type)
    if predicted == 400:
        assert status == 400, body
    elif predicted == 202:  # the intake may only add its own depth and range checks
        assert status == 202 or body["code"] in ("INVALID_FIELD", "INVALID_JSON"), body
    assert daemon.alive() and "Traceback" not in daemon.output()


def test_the_daemon_survived_the_fuzzing(intake: tuple[Any, str]) -> None:
    """After a burst of hostile requests the daemon still serves and logged no traceback."""
    daemon, base = intake
    for data in (b"\xff" * 100, b"[" * 100_000, b'{"a":' * 10_000):
        status, _ = post(base, "/api/events", data, "application/json")
        assert status in (400, 413)
    assert status_or_none("GET", f"{base}/health") == 204
    assert "Traceback" not in daemon.output()
