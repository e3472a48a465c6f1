"""The ilert-facing routes of the sandbox: events and heartbeats, answered as ilert answers them.

Each request goes through one path (:func:`_answer`): read the body, find its integration key,
apply a scripted fault if one matches, otherwise handle it, then record it and push it to the
page, all in one store transaction. Any other ``/api/*`` path is answered 404 and recorded too,
so a daemon configured with a wrong URL shows up in the sandbox rather than nowhere.

The integration key is masked wherever the sandbox shows it on its own (the ``integrationKey``
fields, the key segment of recorded paths); bodies are kept exactly as received.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..events import EventError, validate_event
from .core import SANDBOX, Accepted, Sandbox
from .faults import Fault
from .store import mask

# `{source}` must not swallow /api/v1/events/{key} or /api/v1/heartbeats/{key}
_SOURCE = r"{source:(?!(?:events|heartbeats)/)[^/]+}"
EVENT_PATHS = (
    "/api/events",
    "/api/v1/events",
    "/api/v1/events/{source}/{key}",
    f"/api/v1/{_SOURCE}/{{key}}",
)
HEARTBEAT_PATHS = ("/api/heartbeats/{key}", "/api/v1/heartbeats/{key}")
PING_PATH = "/api/pings/{key}"

_NOT_JSON = object()
_Handler = Callable[[Sandbox, web.Request, Any], tuple[web.Response, Accepted | None]]


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the event, heartbeat and catch-all /api routes."""
    for path in EVENT_PATHS:
        router.add_post(path, handle_event)
    for path in HEARTBEAT_PATHS:
        router.add_get(path, handle_heartbeat)  # GET also answers HEAD
        router.add_post(path, handle_heartbeat)
    router.add_get(PING_PATH, handle_heartbeat)
    router.add_route("*", "/api/{tail:.*}", handle_unknown)


async def handle_event(request: web.Request) -> web.StreamResponse:
    """``POST`` an ilert event: 202 ``{alertKey, alertUrl, responseCode}`` or an ilert error."""
    return await _answer(request, _event)


async def handle_heartbeat(request: web.Request) -> web.StreamResponse:
    """``GET|HEAD|POST`` a heartbeat ping: 202 ``{}``."""
    return await _answer(request, _heartbeat)


async def handle_unknown(request: web.Request) -> web.StreamResponse:
    """Any other /api path: 404 with an ilert error body."""
    return await _answer(request, _unknown)


async def _answer(request: web.Request, handle: _Handler) -> web.StreamResponse:
    sandbox = request.app[SANDBOX]
    body = _parse(await request.read())
    path_key = request.match_info.get("key")
    key = _key_of(body, path_key)
    fault = sandbox.faults.take(key, now=sandbox.monotonic())
    if fault is not None and fault.spec.latency_ms:
        await asyncio.sleep(fault.spec.latency_ms / 1000)
    accepted: Accepted | None = None
    with sandbox.store.transaction():
        if fault is not None and fault.spec.status is not None:
            response = _fault_response(fault)
        else:
            response, accepted = handle(sandbox, request, body)
        sandbox.record(
            method=request.method,
            path=_masked_path(request.path, path_key),
            status=response.status,
            body=None if body is _NOT_JSON else body,
            user_agent=request.headers.get("User-Agent"),
            integration_key=key,
            accepted=accepted,
        )
    response.headers["correlation-id"] = str(uuid.uuid4())
    return response


def _event(
    sandbox: Sandbox, request: web.Request, body: Any
) -> tuple[web.Response, Accepted | None]:
    try:
        if body is _NOT_JSON:
            raise EventError("body", "INVALID_JSON", "the body is not valid JSON")
        path_key = request.match_info.get("key")
        event = validate_event(_with_path_key(body, path_key))
        if not sandbox.event_allowed(event["integrationKey"]):
            # ilert sends no Retry-After: the window simply ends
            return _error(429, "TOO_MANY_REQUESTS", "event rate limit reached for this key"), None
        accepted = sandbox.submit(event, body=body, path=_masked_path(request.path, path_key))
    except EventError as error:
        return web.json_response(error.as_body(400), status=400), None
    answer = {
        "alertKey": accepted.alert.alert_key,
        "alertUrl": f"{request.scheme}://{request.host}/#alert-{accepted.alert.id}",
        "responseCode": accepted.response_code,
    }
    return web.json_response(answer, status=202), accepted


def _heartbeat(
    sandbox: Sandbox, request: web.Request, body: Any
) -> tuple[web.Response, Accepted | None]:
    key = request.match_info["key"]  # aiohttp hands it over percent-decoded
    if not sandbox.ping_allowed(key):
        return _error(429, "TOO_MANY_REQUESTS", "heartbeat rate limit reached for this key"), None
    sandbox.ping(key)
    return web.json_response({}, status=202), None


def _unknown(sandbox: Sandbox, request: web.Request, body: Any) -> tuple[web.Response, None]:
    return _error(404, "NOT_FOUND", f"no ilert endpoint at {request.method} {request.path}"), None


def _fault_response(fault: Fault) -> web.Response:
    assert fault.spec.status is not None
    response = _error(fault.spec.status, "SANDBOX_FAULT", f"scripted fault {fault.id}")
    if fault.spec.retry_after is not None:
        response.headers["Retry-After"] = fault.spec.retry_after
    return response


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"status": status, "message": message, "code": code}, status=status)


def _parse(raw: bytes) -> Any:
    if not raw.strip():
        return _NOT_JSON
    try:
        return json.loads(raw)
    except ValueError:  # also covers bytes that are not UTF-8
        return _NOT_JSON


def _key_of(body: Any, path_key: str | None) -> str | None:
    """The integration key a request is for: the body's (``null`` = absent), else the path's."""
    if isinstance(body, dict):
        for name in ("integrationKey", "apiKey"):
            value = body.get(name)
            if value is not None:
                return value if isinstance(value, str) else None
    return path_key


def _with_path_key(body: Any, path_key: str | None) -> Any:
    """The body, with the path's key as ``integrationKey`` when the body has no key."""
    if path_key is None or not isinstance(body, dict):
        return body
    if body.get("integrationKey") is None and body.get("apiKey") is None:
        return {**body, "integrationKey": path_key}
    return body


def _masked_path(path: str, path_key: str | None) -> str:
    if path_key and path.endswith(path_key):
        return path[: -len(path_key)] + (mask(path_key) or "")
    return path
