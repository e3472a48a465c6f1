"""Queue-file writes nobody awaits (a delete after delivery, a retry state): tracked until they
finish, a failure logged, and all waited for at shutdown."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

logger = logging.getLogger("ilagent.spool.worker")  # its lines read as the worker's


class PendingWrites:
    """The worker's writes in flight."""

    def __init__(self) -> None:
        self._futures: set[asyncio.Future[Any]] = set()

    def keep(self, future: asyncio.Future[Any]) -> None:
        """Track a write; log it if it fails."""
        self._futures.add(future)
        future.add_done_callback(self._written)

    async def wait(self) -> None:
        """Wait for every write asked for so far (their failures are logged, not raised)."""
        if self._futures:
            await asyncio.gather(*self._futures, return_exceptions=True)

    def _written(self, future: asyncio.Future[Any]) -> None:
        self._futures.discard(future)
        if not future.cancelled() and (error := future.exception()) is not None:
            logger.error("queue write failed: %s", error)
