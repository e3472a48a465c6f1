"""The daemon's ilert-compatible event intake: events into the durable queue.

Events (``POST /api/events``, ``/api/v1/events``, ``/api/v1/events/{source}/{key}``) are
checked with :func:`ilagent.events.validate_event`, the same rules the sandbox uses, and
committed to the SQLite queue *before* the answer ``202 {"id", "status"}``. An event posted
with the ``X-Ilagent-Drill`` header (a fire drill's, :mod:`ilagent.drills`) is stored as a
``drill`` row, which the worker hands to the drills instead of sending it.

Every refusal is JSON in ilert's shape ``{status, message, code}``:

* 415 — a ``Content-Type`` that is not JSON (``application/json`` or ``…+json``; a request
  without the header is read as JSON, as curl users expect);
* 413 — a body over ``--http_max_body``;
* 400 — not JSON, nested deeper than :data:`MAX_DEPTH`, not a valid event, or holding a value
  JSON cannot carry on to ilert (integers beyond 64 bits, lone surrogates), naming the field;
* 503 ``QUEUE_FULL`` with ``Retry-After`` — the spool holds ``--spool_max_bytes`` already
  (:mod:`ilagent.spool.space`); it takes events again as deliveries make room;
* 503 ``QUEUE_UNAVAILABLE`` — the queue file refused the write (the client should retry;
  nothing was stored); with ``--spool kafka:TOPIC``, also with ``Retry-After``, when the
  brokers did not acknowledge the event within ``--spool_produce_timeout`` (it may still have
  been stored: at-least-once, a retry can make it arrive twice).

Where the event is kept is the :class:`~ilagent.web.spooling.SpoolSink`'s business: the SQLite
file (``-f``) or the Kafka spool's producer, handed over by the daemon.

Who may post at all is :mod:`ilagent.web.access`'s to decide; the heartbeat proxy is
:mod:`ilagent.web.heartbeats`.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import quote

from aiohttp import hdrs, web

from ilagent.drills.marks import INTAKE_HEADER
from ilagent.errors import SpoolFull, SpoolUnavailable
from ilagent.events import EventError, encode_event, validate_event, with_path_key
from ilagent.logs import mask_key
from ilagent.metrics import Metrics
from ilagent.records import RecordKind
from ilagent.spool.worker import SOURCE
from ilagent.web.refusals import refusal, refuse
from ilagent.web.spooling import SpoolSink

logger = logging.getLogger(__name__)

SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
EVENT_PATHS = ("/api/events", "/api/v1/events", "/api/v1/events/{source}/{key}")
FULL_RETRY_AFTER = 30  # seconds a client is asked to wait while the spool is full
# deeper JSON could exhaust the recursion limit of the JSON encoder when the event is sent on
MAX_DEPTH = 100


class Intake:
    """The request handlers; :meth:`add_routes` puts them on the daemon's app."""

    def __init__(self, *, sink: SpoolSink, metrics: Metrics, max_body: int) -> None:
        self._sink = sink
        self._metrics = metrics
        self._max_body = max_body
        self._consumed = metrics.consumed.labels(SOURCE)

    def add_routes(self, app: web.Application) -> None:
        """Register the event routes."""
        for path in EVENT_PATHS:
            app.router.add_post(path, self.event)

    async def event(self, request: web.Request) -> web.Response:
        """Validate an event, store it durably, answer 202 with its queue id."""
        if hdrs.CONTENT_TYPE in request.headers and not _is_json(request.content_type):
            return self._refuse(
                request, 415, "UNSUPPORTED_MEDIA_TYPE", "the Content-Type must be application/json"
            )
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(request, 413, "PAYLOAD_TOO_LARGE",
                                f"the body is larger than {self._max_body} bytes")
        source = request.match_info.get("source")
        if source is not None and not SOURCE_NAME.fullmatch(source):
            return self._refuse(request, 400, "INVALID_FIELD",
                                "the source in /api/v1/events/{source}/{key} must be lower-case "
                                "letters, digits, - and _ (at most 64)")
        try:
            body = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
        except _OutOfRange:  # 1e999 reads as infinity, which JSON cannot carry on to ilert
            return self._refuse(request, 400, "INVALID_JSON",
                                "the body holds a number out of range")
        except (ValueError, RecursionError):  # RecursionError: nested past the parser's limit
            return self._refuse(request, 400, "INVALID_JSON", "the body is not valid JSON")
        try:
            event = validate_event(with_path_key(body, request.match_info.get("key")))
            _check_depth(event)
            # serialised once, here: what cannot be sent is refused now, not found out later
            text = encode_event(event).decode()
        except EventError as error:
            return self._refuse(request, 400, error.code, error.message)
        key, path = event["integrationKey"], _forward_path(request)
        kind = RecordKind.DRILL if INTAKE_HEADER in request.headers else RecordKind.EVENT
        try:
            row_id = await self._sink.put(kind, integration_key=key, path=path, event=text)
        except SpoolFull as full:
            return self._full(full)
        except SpoolUnavailable as exc:
            # the sink logged why; the client is told to come back
            return self._count(refusal(
                503, "QUEUE_UNAVAILABLE", str(exc),
                None if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}))
        self._consumed.inc()
        logger.debug("queued %s for %s", row_id, mask_key(key))
        return self._count(web.json_response({"id": row_id, "status": "queued"}, status=202))

    def _full(self, full: SpoolFull) -> web.Response:
        logger.warning("the spool is full (%d of %d bytes, --spool_max_bytes): events are "
                       "refused with 503 until deliveries make room", full.used, full.limit)
        return self._count(refusal(503, "QUEUE_FULL", str(full),
                                   {"Retry-After": str(FULL_RETRY_AFTER)}))

    def _refuse(self, request: web.Request, status: int, code: str,
                message: str) -> web.Response:
        return self._count(refuse(request, status, code, message))

    def _count(self, answer: web.Response) -> web.Response:
        self._metrics.intake.labels(str(answer.status)).inc()
        return answer


def _forward_path(request: web.Request) -> str:
    """The path the event goes to below ilert's API, rebuilt from what the route allowed (never
    the client's raw path)."""
    source, key = request.match_info.get("source"), request.match_info.get("key")
    if source is not None and key is not None:
        return f"/v1/events/{source}/{quote(key, safe='')}"
    return "/v1/events" if request.path.startswith("/api/v1/") else "/events"


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")  # Python's reader would accept NaN and Infinity


class _OutOfRange(ValueError):
    pass


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _OutOfRange(text)
    return value


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def _check_depth(event: dict[str, Any]) -> None:
    """Raise :class:`EventError` naming the field nested deeper than :data:`MAX_DEPTH`."""
    for name, value in event.items():
        stack: list[tuple[object, int]] = [(value, 1)]
        while stack:
            item, depth = stack.pop()
            if depth > MAX_DEPTH:
                raise EventError(
                    name, "INVALID_FIELD", f"'{name}' is nested deeper than {MAX_DEPTH} levels"
                )
            if isinstance(item, dict):
                stack.extend((child, depth + 1) for child in item.values())
            elif isinstance(item, list):
                stack.extend((child, depth + 1) for child in item)
