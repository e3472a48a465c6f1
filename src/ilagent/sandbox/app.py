"""Assembly and running of the sandbox: :func:`build_app` wires the parts, :func:`serve` runs them.

The store is opened when the app starts and closed when it is cleaned up, never at build time;
open streams and scripted latencies are ended on shutdown so the server stops without
cancelling handlers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from . import admin, api
from .core import SANDBOX, Sandbox, SandboxConfig
from .store import Store

logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 5.0  # handlers still running after this are cancelled


def build_app(config: SandboxConfig) -> web.Application:
    """The sandbox as an aiohttp application; its state opens at startup."""
    app = web.Application()
    api.add_routes(app.router)
    admin.add_routes(app.router)

    async def state(app: web.Application) -> AsyncIterator[None]:
        sandbox = Sandbox(config, Store.open(config.db_path))
        app[SANDBOX] = sandbox
        where = config.db_path or "memory"
        logger.info("sandbox state in %s, rate limit %s", where, config.rate_limit)
        try:
            yield
        finally:
            sandbox.close()

    async def stop_waiting(app: web.Application) -> None:
        if SANDBOX in app:
            app[SANDBOX].stop_waiting()

    app.cleanup_ctx.append(state)
    app.on_shutdown.append(stop_waiting)
    return app


async def serve(config: SandboxConfig, *, started: asyncio.Event | None = None) -> None:
    """Serve the sandbox until cancelled; ``started`` is set once it is listening."""
    runner = web.AppRunner(build_app(config), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        # WARNING so that the URL shows at the default log level: the user needs it
        logger.warning("ilagent sandbox listening on http://%s:%s/", _url_host(host), port)
        if started is not None:
            started.set()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        logger.info("sandbox stopped")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
