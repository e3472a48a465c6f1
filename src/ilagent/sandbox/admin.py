"""The sandbox's own routes: inspection, seeding, scripted faults, reset, the stream, the page.

All under ``/sandbox`` (plus ``/`` and ``/static/`` for the page), answering JSON lists or
objects. Errors use the ilert error body ``{status, message, code}`` so one client can read both.
None of these routes is recorded or counted as an /api request.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from .core import SANDBOX
from .faults import FaultError, parse_fault
from .policies import INVALID_SEED
from .seed import Refusal, parse_seed

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
ALERT_STATUSES = ("PENDING", "ACCEPTED", "RESOLVED")
PAGE_ALERTS, PAGE_REQUESTS = 500, 200  # as many as the page keeps (sandbox.js)
INITIAL_STATE = "/*initial state*/null"  # the placeholder in index.html


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the page, inspection, fault and stream routes."""
    router.add_get("/", index)
    router.add_static("/static/", STATIC_DIR)
    router.add_get("/sandbox/alerts", list_alerts)
    router.add_get("/sandbox/events", list_events)
    router.add_get("/sandbox/requests", list_requests)
    router.add_get("/sandbox/heartbeats", list_heartbeats)
    router.add_get("/sandbox/stats", stats)
    router.add_get("/sandbox/users", list_users)
    router.add_get("/sandbox/policies", list_policies)
    router.add_post("/sandbox/seed", seed)
    router.add_get("/sandbox/stream", stream)
    router.add_post("/sandbox/faults", add_fault)
    router.add_get("/sandbox/faults", list_faults)
    router.add_delete("/sandbox/faults", clear_faults)
    router.add_delete("/sandbox", reset)


async def index(request: web.Request) -> web.StreamResponse:
    """The web page, with the state of this moment embedded: the page shows it as soon as it
    has loaded, before the stream connects (the stream then keeps it live)."""
    sandbox = request.app[SANDBOX]
    state = {"alerts": sandbox.alerts(status=None, limit=PAGE_ALERTS), "stats": sandbox.stats(),
             "requests": sandbox.store.requests(last=PAGE_REQUESTS),
             "policies": sandbox.policies.policies(), "agentUrl": sandbox.config.agent_url}
    # "<" escaped: no text of an event can close the script element it is embedded in
    embedded = json.dumps(state).replace("<", "\\u003c")
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    return web.Response(text=page.replace(INITIAL_STATE, embedded, 1), content_type="text/html",
                        headers={"Cache-Control": "no-cache"})


async def list_alerts(request: web.Request) -> web.Response:
    """Alerts newest first; ``?status=PENDING|ACCEPTED|RESOLVED``, ``?limit=N``."""
    status = request.query.get("status")
    if status is not None:
        status = status.upper()
        if status not in ALERT_STATUSES:
            raise _bad_parameter("status", f"must be one of {', '.join(ALERT_STATUSES)}")
    limit = _int_param(request, "limit")
    return web.json_response(request.app[SANDBOX].alerts(status=status, limit=limit))


async def list_events(request: web.Request) -> web.Response:
    """Accepted events oldest first; ``?since=<seq>``, ``?integration_key=``, ``?limit=N``."""
    events = request.app[SANDBOX].store.events(
        since=_int_param(request, "since") or 0,
        integration_key=request.query.get("integration_key") or None,
        limit=_int_param(request, "limit"),
    )
    return web.json_response(events)


async def list_requests(request: web.Request) -> web.Response:
    """Every answered /api request oldest first; ``?since=<seq>``, ``?limit=N``, ``?last=N``."""
    requests = request.app[SANDBOX].store.requests(
        since=_int_param(request, "since") or 0,
        limit=_int_param(request, "limit"),
        last=_int_param(request, "last"),
    )
    return web.json_response(requests)


async def list_heartbeats(request: web.Request) -> web.Response:
    """Heartbeat keys (masked) with ping counts; ``?key=<clear key>`` picks one."""
    key = request.query.get("key") or None
    return web.json_response(request.app[SANDBOX].store.heartbeats(key=key))


async def stats(request: web.Request) -> web.Response:
    """``{accepted, rejected, byStatus, inFlight}``: answered /api requests, and those held."""
    return web.json_response(request.app[SANDBOX].stats())


async def list_users(request: web.Request) -> web.Response:
    """Seeded users by id: ``{id, firstName, lastName, email}``."""
    return web.json_response(request.app[SANDBOX].policies.users())


async def list_policies(request: web.Request) -> web.Response:
    """Escalation policies by id as ilert shows them, plus ``rev`` and ``updatedAt``;
    ``?routing_key=`` picks the one with exactly that key."""
    routing_key = request.query.get("routing_key") or None
    return web.json_response(request.app[SANDBOX].policies.policies(routing_key=routing_key))


async def seed(request: web.Request) -> web.Response:
    """Add users, policies, API keys, heartbeat and integration keys (format in ``seed.py``),
    all or nothing: 201 ``{users, policies, apiKeys, heartbeatKeys, integrationKeys}`` (what
    was added, ids assigned; keys counted), 400 ``INVALID_SEED``, 409 ``SEED_CONFLICT`` for an
    id, e-mail or routing key already there."""
    sandbox = request.app[SANDBOX]
    try:
        parsed = parse_seed(await request.json())
        seeded = sandbox.seed(parsed)
    except Refusal as refusal:
        code = refusal.code if refusal.status == 409 else INVALID_SEED
        return _error(refusal.status, code, refusal.message)
    except ValueError:  # json.JSONDecodeError
        return _error(400, INVALID_SEED, "the body is not valid JSON")
    body = {"users": seeded.users, "policies": seeded.policies, "apiKeys": seeded.api_keys,
            "heartbeatKeys": len(parsed.heartbeat_keys),
            "integrationKeys": len(parsed.integration_keys)}
    return web.json_response(body, status=201)


async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: every answered /api request, with the alert it changed."""
    return await request.app[SANDBOX].hub.serve(request)


async def add_fault(request: web.Request) -> web.Response:
    """Script a fault (fields in ``faults.py``); 201 ``{"id": ...}``."""
    sandbox = request.app[SANDBOX]
    try:
        spec = parse_fault(await request.json())
    except (ValueError, FaultError) as error:  # json.JSONDecodeError is a ValueError
        message = str(error) if isinstance(error, FaultError) else "the body is not valid JSON"
        return _error(400, "INVALID_FAULT", message)
    fault = sandbox.faults.add(spec, now=sandbox.monotonic())
    logger.info(
        "sandbox fault %s scripted: status %s, latency %s ms, method %s",
        fault.id,
        spec.status,
        spec.latency_ms,
        spec.method or "any",
    )
    return web.json_response({"id": fault.id}, status=201)


async def list_faults(request: web.Request) -> web.Response:
    """The faults that still apply, oldest (applied first) first."""
    sandbox = request.app[SANDBOX]
    now = sandbox.monotonic()
    return web.json_response([fault.to_json(now) for fault in sandbox.faults.list(now=now)])


async def clear_faults(request: web.Request) -> web.Response:
    """Drop every fault; ``{"cleared": n}``."""
    cleared = request.app[SANDBOX].faults.clear()
    logger.info("sandbox faults cleared (%s)", cleared)
    return web.json_response({"cleared": cleared})


async def reset(request: web.Request) -> web.Response:
    """Forget alerts, events, requests, heartbeats, counters, faults and rate windows; users,
    policies, API keys, heartbeat and integration keys go back to the startup seed (``--seed``,
    ``--api_key``)."""
    request.app[SANDBOX].reset()
    return web.json_response({"reset": True})


def _int_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise _bad_parameter(name, "must be an integer") from None
    if value < 0:
        raise _bad_parameter(name, "must not be negative")
    return value


def _bad_parameter(name: str, what: str) -> web.HTTPBadRequest:
    body = {"status": 400, "message": f"'{name}' {what}", "code": "INVALID_PARAMETER"}
    return web.HTTPBadRequest(text=json.dumps(body), content_type="application/json")


def _error(status: int, code: str, message: str) -> web.Response:
    body: dict[str, Any] = {"status": status, "message": message, "code": code}
    return web.json_response(body, status=status)
