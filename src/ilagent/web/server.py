"""The daemon's HTTP server: name and version, liveness, readiness and Prometheus metrics.

* ``GET /health`` — 204 while the process runs (503 while it shuts down), as ilagent 0.9;
  ``GET /health?details`` — 200 with what is known about ilert (reachable, the circuit).
* ``GET /ready`` — 204 when every part is ready, else 503 naming the parts that are not;
  ``GET /ready/<part>`` (``kafka``, ``intake``) answers for one part, so a load balancer can
  probe the intake alone and a Kafka outage does not take it out of rotation. ilert's
  reachability is not readiness: the spool accepts events exactly when ilert is down.
* ``GET /metrics`` — Prometheus text; ``ilagent_ready{component}`` mirrors the parts.

``/health`` and ``/ready…`` answer everyone; everything else (``?details`` and ``/metrics``
too) is guarded by :class:`~ilagent.web.access.Access`: the allow list, the rate limit, the
token.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from ilagent import USER_AGENT, __version__
from ilagent.config import HttpSettings
from ilagent.errors import EXIT_USAGE, ResourceError
from ilagent.metrics import Metrics
from ilagent.web.access import Access
from ilagent.web.probes import Probes
from ilagent.web.refusals import refusal, refuse, shown_path

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

QUIET_METHODS = frozenset({"GET", "HEAD"})  # a wrong URL of theirs is answered, not logged
ACCESS = web.AppKey("access", Access)  # the app's guard, to re-read its token file on SIGHUP


def build_app(*, metrics: Metrics, probes: Probes, settings: HttpSettings) -> web.Application:
    """The aiohttp application of the daemon; other modules add their routes to it. Who may
    use it is said in one line as the server starts (and the token file read then)."""
    access = Access(settings=settings, metrics=metrics)
    app = web.Application(client_max_size=settings.max_body,
                          middlewares=[_json_errors, access.middleware()])
    app.cleanup_ctx.append(access.polling)
    app[ACCESS] = access

    async def index(_: web.Request) -> web.Response:
        return web.json_response({"name": "ilagent", "version": __version__,
                                  "userAgent": USER_AGENT})

    async def health(request: web.Request) -> web.Response:
        status = 503 if probes.shutting_down else 204
        if "details" not in request.query:
            return web.Response(status=status)
        alive = {"alive": not probes.shutting_down, **probes.details()}
        return web.json_response(alive, status=200 if status == 204 else status)

    async def ready(request: web.Request) -> web.Response:
        part = request.match_info.get("part")
        if part is not None and part not in probes.parts:
            return web.json_response(
                {"status": 404, "code": "UNKNOWN_PART",
                 "message": f"no part {part!r}; this daemon runs: {', '.join(probes.parts)}"},
                status=404)
        failures = probes.failures(part)
        if not failures:
            return web.Response(status=204)
        return web.json_response({"ready": False, "failing": failures}, status=503,
                                 dumps=lambda o: json.dumps(o, separators=(",", ":")))

    async def metrics_page(_: web.Request) -> web.Response:
        probes.update(metrics)
        return web.Response(body=metrics.render(),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    app.router.add_get("/", index)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/ready/{part}", ready)
    app.router.add_get("/metrics", metrics_page)
    return app


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown routes and wrong methods answer JSON in ilert's shape, like everything else."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        status, code = exc.status, exc.reason.upper().replace(" ", "_")
        message = f"{request.method} {request.path}: {exc.reason}"
        allow = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        if request.method in QUIET_METHODS:  # a browser's or a scanner's look
            return refusal(status, code, message, allow)
        if status == 404:  # an event sent to a wrong URL: say where they go
            message += _posts_taken(request.app)
        return refuse(request, status, code, message, allow)


def _posts_taken(app: web.Application) -> str:
    """`` (this daemon takes POST /api/events, …)``, or nothing when it takes no POST."""
    paths = sorted({route.resource.canonical for route in app.router.routes()
                    if route.method == "POST" and route.resource is not None})
    return f" (this daemon takes POST {', '.join(paths)})" if paths else ""


class AccessLogger(AbstractAccessLogger):
    """One line per request at INFO, with the ``{key}`` segment of a path masked."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info('%s "%s %s" %d %.1f ms', request.remote, request.method,
                         shown_path(request), response.status, time * 1000)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


async def serve(app: web.Application, settings: HttpSettings) -> web.AppRunner:
    """Serve ``app`` on the settings' host and port; ``ResourceError`` (exit 2) when that
    address cannot be had."""
    runner = web.AppRunner(app, access_log=logging.getLogger("aiohttp.access"),
                           access_log_class=AccessLogger, handle_signals=False,
                           shutdown_timeout=1.0)
    try:
        await runner.setup()  # reads the token file
    except BaseException:
        await runner.cleanup()
        raise
    site = web.TCPSite(runner, settings.host, settings.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ResourceError(f"cannot listen on {settings.host}:{settings.port}: "
                            f"{exc.strerror or exc}", exit_code=EXIT_USAGE) from None
    logger.info("HTTP server listening on %s:%d", settings.host, settings.port)
    return runner
