"""Fixtures of the unit tests: a real local HTTP server (the sandbox app, in process), a queue file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ilagent.ilert import IlertClient
from ilagent.sandbox import SandboxConfig, build_app
from ilagent.spool.store import QueueStore


@pytest.fixture
async def sandbox() -> AsyncIterator[TestClient[Any, Any]]:
    """The sandbox app on a free local port, with a client for its JSON API."""
    async with TestClient(TestServer(build_app(SandboxConfig()))) as client:
        yield client


@pytest.fixture
async def ilert(sandbox: TestClient[Any, Any]) -> AsyncIterator[IlertClient]:
    """An ilert client pointed at that sandbox."""
    url = str(sandbox.make_url("/api"))
    async with IlertClient(api_url=url, beat_url=url, timeout=5) as client:
        yield client


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[QueueStore]:
    """An open queue store on a fresh SQLite file."""
    store = QueueStore(str(tmp_path / "q.db3"))
    await store.open()
    yield store
    await store.close()
