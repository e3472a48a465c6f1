"""The heartbeat proxy: ``GET``/``HEAD``/``POST /api/heartbeats/{key}`` pings that heartbeat.

A ping is one attempt through the delivery engine's gate and pacing, the same as every other
request to ilert: ilert's 5 pings a minute per heartbeat, the process-wide limit, a heartbeat
blocked by a 429, the shared circuit. The client gets the answer:

* ``202 {}`` when ilert took the ping — or at once, without a request, when ilert took a ping
  of that heartbeat less than :data:`RECENT` seconds ago (another would tell it nothing new);
  pings of one heartbeat that arrive together share one request;
* ``503 CIRCUIT_OPEN`` with ``Retry-After`` while ilert fails for every key: the ping is not
  sent (the circuit's own probes find out when ilert is back);
* ``429 RATE_LIMITED`` with ``Retry-After`` when the heartbeat may not be pinged for more than
  :data:`MAX_WAIT` seconds (its share of ilert's limit is used, or ilert answered 429);
* ``502 HEARTBEAT_NOT_DELIVERED`` with ilert's answer otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from aiohttp import web

from ilagent.delivery.engine import Deliverer, Job, Verdict
from ilagent.delivery.gate import Gate
from ilagent.delivery.lanes import heartbeat_lane
from ilagent.delivery.pacing import Pacer
from ilagent.delivery.sender import Sender
from ilagent.ilert import Outcome, Result
from ilagent.logs import mask_key
from ilagent.metrics import Metrics
from ilagent.web.refusals import refusal, refuse, retry_after

logger = logging.getLogger(__name__)

SOURCE = "http"
HEARTBEAT_PATH = "/api/heartbeats/{key}"
RECENT = 12.0  # ilert takes 5 pings a minute per heartbeat: one every 12 s says it all
MAX_WAIT = 5.0  # a ping that would wait longer for its turn is told when to come back
MAX_REMEMBERED = 10_000  # heartbeats whose last success is kept; older ones are forgotten


class HeartbeatProxy:
    """The heartbeat routes; :meth:`add_routes` puts them on the daemon's app."""

    def __init__(self, *, deliverer: Deliverer, gate: Gate, pacer: Pacer,
                 metrics: Metrics) -> None:
        self._deliverer = deliverer
        self._gate = gate
        self._pacer = pacer
        self._metrics = metrics
        self._succeeded: dict[str, float] = {}  # key → when ilert last took a ping of it
        self._pinging: dict[str, asyncio.Future[Result | None]] = {}

    def add_routes(self, app: web.Application) -> None:
        """Register the heartbeat routes."""
        app.router.add_get(HEARTBEAT_PATH, self.ping)  # GET also answers HEAD
        app.router.add_post(HEARTBEAT_PATH, self.ping)

    async def ping(self, request: web.Request) -> web.Response:
        """Ping the heartbeat (or say why not, and when to come back)."""
        key = request.match_info["key"]
        if time.monotonic() - self._succeeded.get(key, -math.inf) < RECENT:
            self._metrics.heartbeats_coalesced.labels(SOURCE).inc()
            return web.json_response({}, status=202)
        job = Job(owner=_NOBODY, source=SOURCE, lane=heartbeat_lane(key), integration_key=key,
                  origin="the heartbeat proxy")
        pinging = self._pinging.get(key)
        if pinging is None:
            refused = self._refusal(request, job)
            if refused is not None:
                return refused
            pinging = self._pinging[key] = asyncio.ensure_future(self._send(job))
            pinging.add_done_callback(lambda _done: self._pinging.pop(key, None))
        # shielded: a client that hangs up does not take the others' ping with it
        return self._answer(request, job, await asyncio.shield(pinging))

    def _refusal(self, request: web.Request, job: Job) -> web.Response | None:
        """The answer without a request: the circuit is open, or the heartbeat's turn is
        too far off; None when the ping may go."""
        if self._gate.open:
            return refuse(request, 503, "CIRCUIT_OPEN", "ilert fails for every key right now, "
                          "so the ping was not sent; retry later",
                          retry_after(self._gate.probe_in()))
        blocked = self._gate.blocked_until(Sender.gate_key(job)) - time.monotonic()
        wait = max(blocked, self._pacer.wait(job.integration_key, kind="heartbeat"))
        if wait > MAX_WAIT:
            return refuse(request, 429, "RATE_LIMITED", "this heartbeat was pinged too often "
                          "(ilert takes 5 pings a minute) or ilert asked to wait; retry later",
                          retry_after(wait))
        return None

    async def _send(self, job: Job) -> Result | None:
        result = await self._deliverer.send_now(job)
        if result is not None and result.outcome is Outcome.DELIVERED:
            self._metrics.heartbeats.labels(SOURCE).inc()
            self._remember(job.integration_key)
        return result

    def _remember(self, key: str) -> None:
        now = time.monotonic()
        if len(self._succeeded) >= MAX_REMEMBERED:
            self._succeeded = {k: t for k, t in self._succeeded.items() if now - t < RECENT}
        self._succeeded[key] = now

    def _answer(self, request: web.Request, job: Job, result: Result | None) -> web.Response:
        if result is None:
            return refuse(request, 503, "SHUTTING_DOWN", "the daemon is shutting down, so the "
                          "ping was not sent; retry later", retry_after(1.0))
        if result.outcome is Outcome.DELIVERED:
            return web.json_response({}, status=202)
        logger.warning("heartbeat ping %s failed: %s %s", mask_key(job.integration_key),
                       result.status_label, result.detail)
        if result.outcome is Outcome.RATE_LIMITED:
            wait = self._gate.blocked_until(Sender.gate_key(job)) - time.monotonic()
            # said in the warning above: answered, not logged again
            return refusal(429, "RATE_LIMITED", "ilert answered 429 to this heartbeat; retry "
                           "later", retry_after(max(wait, result.retry_after or 0.0)))
        detail = f": {result.detail}" if result.detail else ""
        said = (f"ilert answered {result.status}" if result.status is not None
                else "ilert could not be reached")
        return refusal(502, "HEARTBEAT_NOT_DELIVERED", f"{said}{detail}")



class _Nobody:
    """The owner of a proxied ping: the client waits for the answer itself."""

    def cancelled(self, job: Job) -> bool:
        return False

    async def finished(self, job: Job, verdict: Verdict, result: Result | None,
                       reason: str) -> None:
        """Never called: a proxied ping is one attempt, answered to its client."""

    def abandoned(self, job: Job) -> None:
        """Never called (see :meth:`finished`)."""

    def attempted(self, job: Job, result: Result, delay: float) -> None:
        """Never called (see :meth:`finished`)."""


_NOBODY = _Nobody()
