"""Fixtures for the sandbox tests: real sandboxes on free local ports, an HTTP client, a browser.

``sandbox_factory`` starts sandboxes with any config and stops them at teardown; ``sandbox_url``
is one with the default config; ``wait_until`` polls with a deadline. ``browser_page`` is a page
of a headless Debian Chromium driven by Playwright; a missing browser fails the test, never skips.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp import web

from ilagent.sandbox import SandboxConfig, build_app

if TYPE_CHECKING:
    pass

WAIT_S = 10.0


@dataclass
class RunningSandbox:
    """A sandbox listening on 127.0.0.1; ``url`` has no trailing slash."""

    url: str
    runner: web.AppRunner
    stopped: bool = False

    async def stop(self) -> None:
        """Stop serving and close the state (idempotent)."""
        if not self.stopped:
            self.stopped = True
            await self.runner.cleanup()


async def start_sandbox(config: SandboxConfig) -> RunningSandbox:
    """Start ``build_app(config)`` on a free port of 127.0.0.1 (``config.port`` is ignored)."""
    runner = web.AppRunner(build_app(config), access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    return RunningSandbox(f"http://127.0.0.1:{port}", runner)


SandboxFactory = Callable[..., Awaitable[RunningSandbox]]


@pytest.fixture
async def sandbox_factory() -> AsyncIterator[SandboxFactory]:
    """Start sandboxes with ``await factory(**SandboxConfig fields)``; all stop at teardown."""
    started: list[RunningSandbox] = []

    async def start(**fields: Any) -> RunningSandbox:
        sandbox = await start_sandbox(SandboxConfig(**fields))
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in reversed(started):
        await sandbox.stop()


@pytest.fixture
async def sandbox_url(sandbox_factory: SandboxFactory) -> str:
    """The base URL of a sandbox with the default config (in memory, no rate limit)."""
    return (await sandbox_factory()).url


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp client."""
    async with aiohttp.ClientSession() as session:
        yield session


async def _wait_until(
    check: Callable[[], Awaitable[bool]], *, timeout: float = WAIT_S, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
def wait_until() -> Callable[..., Awaitable[None]]:
    """``await wait_until(async_check, timeout=..., what=...)``: poll until true, else fail."""
    return _wait_until
