"""The daemon's HTTP server: name and version, liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from ilagent import USER_AGENT, __version__
from ilagent.logs import mask_key
from ilagent.metrics import Metrics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = frozenset({"/health", "/ready"})


@dataclass
class Probes:
    """What ``/health`` and ``/ready`` answer from; the daemon keeps it current."""

    shutting_down: bool = False
    # each returns None when its part works, else a JSON-able description of what fails
    checks: list[Callable[[], dict[str, Any] | None]] = field(default_factory=list)

    def failures(self) -> list[dict[str, Any]]:
        """Every part that does not work right now."""
        if self.shutting_down:
            return [{"component": "daemon", "error": "shutting down"}]
        return [failure for check in self.checks if (failure := check()) is not None]


def build_app(*, metrics: Metrics, probes: Probes, token: str | None = None,
              max_body: int = 1024 * 1024) -> web.Application:
    """The aiohttp application of the daemon; other modules add their routes to it."""
    middlewares: list[Any] = [_bearer_auth(token)] if token else []
    app = web.Application(client_max_size=max_body, middlewares=middlewares)

    async def index(_: web.Request) -> web.Response:
        return web.json_response({"name": "ilagent", "version": __version__,
                                  "userAgent": USER_AGENT})

    async def health(_: web.Request) -> web.Response:
        return web.Response(status=503 if probes.shutting_down else 204)

    async def ready(_: web.Request) -> web.Response:
        failures = probes.failures()
        if not failures:
            return web.Response(status=204)
        return web.json_response({"ready": False, "failing": failures}, status=503,
                                 dumps=lambda o: json.dumps(o, separators=(",", ":")))

    async def metrics_page(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render(),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    app.router.add_get("/", index)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics_page)
    return app


def _bearer_auth(token: str) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in OPEN_PATHS:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return web.json_response(
                    {"status": 401, "message": "missing or wrong bearer token",
                     "code": "UNAUTHORIZED"}, status=401,
                    headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return check


class AccessLogger(AbstractAccessLogger):
    """One line per request at INFO, with the ``{key}`` segment of a path masked."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        path = request.path
        # a BaseRequest answered before routing has no match_info
        key = request.match_info.get("key") if isinstance(request, web.Request) else None
        if key:
            path = path.replace(key, mask_key(key))
        self.logger.info('%s "%s %s" %d %.1f ms', request.remote, request.method, path,
                         response.status, time * 1000)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
