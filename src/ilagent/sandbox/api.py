"""The ilert-facing routes of the sandbox: events, heartbeats and the three policy-sync calls,
answered as ilert answers them.

Each request goes through one path (:func:`_answer`): read the body, find its integration key,
apply a scripted fault if one matches (by key, method and path), otherwise handle it, then record
it (path with query string) and push it to the page.

The sandbox says no the way ilert (or what stands in front of it) does, so that a client's
reading of each answer can be tested:

* a ping for a heartbeat key that is not seeded, once any is (``heartbeatKeys``): **404**; on a
  HEAD without a body (ilert's beat host answers so), on GET/POST with ilert's error body
  ``{status, message, code: NOT_FOUND}``;
* an event for an integration key that is not seeded, once any is (``integrationKeys``):
  **404** ``NOT_FOUND`` when the key is in the path (``/api/v1/events/{source}/{key}``), **400**
  ``INVALID_INTEGRATION_KEY`` when only the body names it. ilert documents neither answer: this
  follows the suggestion of its API notes and is **uncertain**;
* an unknown user, policy or level on the policy calls: 404 with ilert's error body;
* any other ``/api/*`` request (a wrong URL): a **plain-text** 404, as a web server or proxy
  in front of a wrong URL answers, not ilert's error body; 405 (ilert's body) for a known path
  with a wrong method. Both are recorded too, so a daemon configured with a wrong URL shows up
  in the sandbox rather than nowhere.

The policy calls (:data:`USER_SEARCH_PATH`, :data:`POLICY_RESOLVE_PATH`,
:data:`POLICY_LEVEL_PATH`; shapes in :mod:`.policies`) need ``Authorization: Bearer <key>`` with
a seeded API key: without the header, with another scheme or another key, 401 ``UNAUTHORIZED``;
with ``rate_limit`` on, a key's 121st call in its minute is 429 without ``Retry-After``.

The integration key is masked wherever the sandbox shows it on its own (the ``integrationKey``
fields, the key segment of recorded paths); bodies are kept exactly as received. API keys are
neither recorded nor logged. The ``X-Ilagent-Route`` request header (the ilagent route that sent
an event) is recorded as the event's and the request's ``route``; the body never sets it.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

from aiohttp import web

from ..events import EventError, validate_event, with_path_key
from .core import SANDBOX, Accepted, Sandbox
from .faults import Fault, Target
from .policies import LevelChange, PolicyBook
from .records import ROUTE_HEADER, mask, route_of
from .seed import INVALID_BODY, MISSING_FIELD, Refusal, parse_level

logger = logging.getLogger(__name__)

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
USER_SEARCH_PATH = "/api/users/search-email"
POLICY_RESOLVE_PATH = "/api/escalation-policies/resolve"
POLICY_LEVEL_PATH = r"/api/escalation-policies/{policy_id:\d+}/levels/{level:\d+}"
UNAUTHORIZED = "UNAUTHORIZED"
NOT_FOUND = "NOT_FOUND"
INVALID_INTEGRATION_KEY = "INVALID_INTEGRATION_KEY"
WRONG_PATH = "404: Not Found"  # what a plain web server answers for a URL it has nothing at

_NOT_JSON = object()


class Reply(NamedTuple):
    """What a handler answers: status, body (a JSON object, a plain text, or None for no body),
    and the alert change if an event was taken."""

    status: int
    answer: dict[str, Any] | str | None
    accepted: Accepted | None = None
    retry_after: str | None = None
    policy: dict[str, Any] | None = None  # the escalation policy a level update changed


# (sandbox, request, parsed body or _NOT_JSON, its JSON text) -> the reply
_Handler = Callable[[Sandbox, web.Request, Any, str | None], Reply]


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the event, heartbeat and catch-all /api routes."""
    # each "*" route joins the resource registered just before it: other methods get 405
    for path in EVENT_PATHS:
        router.add_post(path, handle_event)
        router.add_route("*", path, handle_unknown)
    for path in HEARTBEAT_PATHS:
        router.add_get(path, handle_heartbeat)  # GET also answers HEAD
        router.add_post(path, handle_heartbeat)
        router.add_route("*", path, handle_unknown)
    router.add_get(PING_PATH, handle_heartbeat)
    router.add_route("*", PING_PATH, handle_unknown)
    for method, path, handler in (
        ("POST", USER_SEARCH_PATH, handle_user_search),
        ("GET", POLICY_RESOLVE_PATH, handle_policy_resolve),  # GET also answers HEAD
        ("PUT", POLICY_LEVEL_PATH, handle_level_update),
    ):
        router.add_route(method, path, handler)
        router.add_route("*", path, handle_unknown)
    router.add_route("*", "/api/{tail:.*}", handle_unknown)


async def handle_event(request: web.Request) -> web.StreamResponse:
    """``POST`` an ilert event: 202 ``{alertKey, alertUrl, responseCode}`` or an ilert error."""
    return await _answer(request, _event)


async def handle_heartbeat(request: web.Request) -> web.StreamResponse:
    """``GET|HEAD|POST`` a heartbeat ping: 202 ``{}``, 404 for a key that is not seeded."""
    return await _answer(request, _heartbeat)


async def handle_user_search(request: web.Request) -> web.StreamResponse:
    """``POST {"email"}``: 200 ilert ``User``, 404 for no such user, 401 without a valid key."""
    return await _answer(request, _user_search)


async def handle_policy_resolve(request: web.Request) -> web.StreamResponse:
    """``GET ?routing-key=``: 200 ilert ``EscalationPolicy``, 404 for no such routing key."""
    return await _answer(request, _policy_resolve)


async def handle_level_update(request: web.Request) -> web.StreamResponse:
    """``PUT`` an ``EscalationRule``: 200 with the new rule, 404 for no such policy or level."""
    return await _answer(request, _level_update)


async def handle_unknown(request: web.Request) -> web.StreamResponse:
    """Any other /api request: a plain-text 404, or 405 with ilert's error body for a known
    path."""
    return await _answer(request, _unknown)


async def _answer(request: web.Request, handle: _Handler) -> web.StreamResponse:
    sandbox = request.app[SANDBOX]
    body, text = _parse(await request.read())
    path_key = request.match_info.get("key")
    key = _key_of(body, path_key)
    # faults script ilert's endpoints; the catch-all answers as it always does
    target = Target(request.method, request.path, key)
    fault = None if handle is _unknown else sandbox.faults.take(target, now=sandbox.monotonic())
    if fault is not None and fault.spec.latency_ms:
        sandbox.in_flight += 1
        try:
            await sandbox.delay(fault.spec.latency_ms / 1000)
        finally:
            sandbox.in_flight -= 1
    if fault is not None and fault.spec.status is not None:
        reply = _fault_reply(fault)
    else:
        reply = handle(sandbox, request, body, text)
    path = _masked_path(request.path, path_key)
    logger.debug("sandbox %s %s answered %s", request.method, path, reply.status)
    if request.query_string:
        path += f"?{request.query_string}"
    answer = json.dumps(reply.answer)
    sandbox.record(
        route=route_of(request.headers.get(ROUTE_HEADER)),
        method=request.method,
        path=path,
        status=reply.status,
        body=None if body is _NOT_JSON else body,
        text=text,
        user_agent=request.headers.get("User-Agent"),
        integration_key=key,
        answer=reply.answer,
        answer_text=answer,
        accepted=reply.accepted,
        policy=reply.policy,
    )
    headers = {"correlation-id": str(uuid.uuid4())}
    if reply.retry_after is not None:
        headers["Retry-After"] = reply.retry_after
    if reply.answer is None:
        return web.Response(status=reply.status, headers=headers)
    if isinstance(reply.answer, str):
        return web.Response(text=reply.answer, status=reply.status, headers=headers)
    return web.Response(
        text=answer, status=reply.status, content_type="application/json", headers=headers
    )


def _event(sandbox: Sandbox, request: web.Request, body: Any, text: str | None) -> Reply:
    try:
        if body is _NOT_JSON or text is None:
            raise EventError("body", "INVALID_JSON", "the body is not valid JSON")
        path_key = request.match_info.get("key")
        event = validate_event(with_path_key(body, path_key))
        if event["integrationKey"] not in sandbox.integration_keys:
            if path_key is not None:
                return _error(404, NOT_FOUND, "no alert source with this integration key")
            return _error(400, INVALID_INTEGRATION_KEY,
                          "the integration key belongs to no alert source")
        if not sandbox.event_allowed(event["integrationKey"]):
            # ilert sends no Retry-After: the window simply ends
            return _error(429, "TOO_MANY_REQUESTS", "event rate limit reached for this key")
        path = _masked_path(request.path, path_key)
        route = route_of(request.headers.get(ROUTE_HEADER))  # never from the body
        accepted = sandbox.submit(event, body=body, text=text, path=path, route=route)
    except EventError as error:
        return Reply(400, error.as_body(400))
    answer = {
        "alertKey": accepted.alert.alert_key,
        "alertUrl": f"{request.scheme}://{request.host}/#alert-{accepted.alert.id}",
        "responseCode": accepted.response_code,
    }
    return Reply(202, answer, accepted)


def _heartbeat(sandbox: Sandbox, request: web.Request, body: Any, text: str | None) -> Reply:
    key = request.match_info["key"]  # aiohttp hands it over percent-decoded
    if key not in sandbox.heartbeat_keys:
        if request.method == "HEAD":
            return Reply(404, None)  # as ilert's beat host: no body at all
        return _error(404, NOT_FOUND, "no heartbeat with this key")
    if not sandbox.ping_allowed(key):
        return _error(429, "TOO_MANY_REQUESTS", "heartbeat rate limit reached for this key")
    sandbox.ping(key)
    return Reply(202, {})


def _user_search(sandbox: Sandbox, request: web.Request, body: Any, text: str | None) -> Reply:
    def find(book: PolicyBook) -> Reply:
        email = body.get("email") if isinstance(body, dict) else None
        if not isinstance(email, str) or not email.strip():
            raise Refusal(400, MISSING_FIELD, 'the body must be {"email": "<e-mail address>"}')
        return Reply(200, book.find_user(email))

    return _policy_call(sandbox, request, find)


def _policy_resolve(sandbox: Sandbox, request: web.Request, body: Any, text: str | None) -> Reply:
    def resolve(book: PolicyBook) -> Reply:
        routing_key = request.query.get("routing-key", "")
        if not routing_key.strip():
            raise Refusal(400, MISSING_FIELD, "the query parameter 'routing-key' is required")
        return Reply(200, book.resolve(routing_key))

    return _policy_call(sandbox, request, resolve)


def _level_update(sandbox: Sandbox, request: web.Request, body: Any, text: str | None) -> Reply:
    def update(book: PolicyBook) -> Reply:
        if body is _NOT_JSON:
            raise Refusal(400, INVALID_BODY, "the body is not valid JSON")
        policy_id, index = int(request.match_info["policy_id"]), int(request.match_info["level"])
        change: LevelChange = book.set_level(policy_id, index, parse_level(body))
        return Reply(200, change.rule, policy=change.policy)

    return _policy_call(sandbox, request, update)


def _policy_call(
    sandbox: Sandbox, request: web.Request, call: Callable[[PolicyBook], Reply]
) -> Reply:
    """Check the Bearer key and the key's rate limit, then make ``call``; a Refusal answers."""
    book = sandbox.policies
    api_key = _bearer(request.headers.get("Authorization"))
    if api_key is None or not book.accepts(api_key):
        return _error(401, UNAUTHORIZED, _why_unauthorized(api_key, book))
    if not sandbox.api_call_allowed(api_key):
        return _error(429, "TOO_MANY_REQUESTS", "API rate limit reached for this API key")
    try:
        return call(book)
    except Refusal as refusal:
        return Reply(refusal.status, refusal.as_body())


def _bearer(header: str | None) -> str | None:
    """The key of ``Authorization: Bearer <key>`` (scheme in any case), else None."""
    scheme, _, key = (header or "").strip().partition(" ")
    key = key.strip()
    return key if scheme.casefold() == "bearer" and key else None


def _why_unauthorized(api_key: str | None, book: PolicyBook) -> str:
    if not book.has_api_keys:
        return (
            "the sandbox accepts no API key yet: start it with --api_key KEY or"
            ' POST /sandbox/seed {"apiKeys": [KEY]}'
        )
    if api_key is None:
        return "send the user API key as 'Authorization: Bearer <key>'"
    return "the API key is not valid"


def _unknown(sandbox: Sandbox, request: web.Request, body: Any, text: str | None) -> Reply:
    if "tail" in request.match_info:
        return Reply(404, WRONG_PATH)  # a web server's answer, not ilert's: the URL is wrong
    return _error(405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed here")


def _fault_reply(fault: Fault) -> Reply:
    assert fault.spec.status is not None
    status = fault.spec.status
    answer = {"status": status, "message": f"scripted fault {fault.id}", "code": "SANDBOX_FAULT"}
    return Reply(status, answer, retry_after=fault.spec.retry_after)


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"status": status, "message": message, "code": code})


def _parse(raw: bytes) -> tuple[Any, str | None]:
    """The JSON body and its text, or ``(_NOT_JSON, None)``."""
    if not raw.strip():
        return _NOT_JSON, None
    try:
        body = json.loads(raw)
    except ValueError:  # also covers bytes in no UTF encoding
        return _NOT_JSON, None
    try:
        return body, raw.decode()
    except UnicodeDecodeError:  # valid UTF-16/32 JSON: keep a UTF-8 copy
        return body, json.dumps(body)


def _key_of(body: Any, path_key: str | None) -> str | None:
    """The integration key a request is for: the body's (``null`` = absent), else the path's."""
    if isinstance(body, dict):
        for name in ("integrationKey", "apiKey"):
            value = body.get(name)
            if value is not None:
                return value if isinstance(value, str) else None
    return path_key


def _masked_path(path: str, path_key: str | None) -> str:
    if path_key and path.endswith(path_key):
        return path[: -len(path_key)] + (mask(path_key) or "")
    return path
