"""What ``/health`` and ``/ready`` answer from, and the daemon's own heartbeat (``-b``),
pinged only while every part is ready.

Both run in every daemon, with an HTTP server (``-p``) or without one, so nothing here needs
aiohttp: a daemon that serves no HTTP never imports it (the README, *Install*).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ilagent.ilert import IlertClient, Outcome
from ilagent.logs import mask_key
from ilagent.metrics import Metrics

logger = logging.getLogger(__name__)

Check = Callable[[], dict[str, Any] | None]
READY_RECHECK = 1.0  # s between looks at readiness while the daemon waits to ping


@dataclass
class Probes:
    """What ``/health`` and ``/ready`` answer from; the daemon keeps it current."""

    shutting_down: bool = False
    # per part: None when it is ready, else a JSON-able description of what fails
    parts: dict[str, Check] = field(default_factory=dict)
    # what /health?details shows (ilert's reachability); not part of readiness
    details: Callable[[], dict[str, Any]] = field(default=lambda: {})

    def failures(self, part: str | None = None) -> list[dict[str, Any]]:
        """Every part (or the one named) that is not ready right now."""
        if self.shutting_down:
            return [{"component": "daemon", "error": "shutting down"}]
        checks = self.parts if part is None else {part: self.parts[part]}
        return [{**failure, "component": name} for name, check in checks.items()
                if (failure := check()) is not None]

    def update(self, metrics: Metrics) -> None:
        """Set ``ilagent_ready{component}`` for every part (and refresh the details)."""
        self.details()
        for name, check in self.parts.items():
            metrics.ready.labels(name).set(0 if self.shutting_down or check() else 1)


async def ping_while_ready(key: str, *, client: IlertClient, probes: Probes, metrics: Metrics,
                           interval: float, stop: asyncio.Event,
                           recheck: float = READY_RECHECK) -> None:
    """Ping the daemon's own heartbeat while every part is ready, until ``stop`` is set: the
    first ping as soon as the daemon is ready, then one every ``interval`` s.

    While a part is not ready, readiness is looked at every ``recheck`` s and the ping follows
    within that once it is, but never sooner than ``interval`` after the one before: a part
    that flaps cannot make the pings more frequent (ilert takes 5 a minute per heartbeat).
    That parts are not ready is logged when it starts and when the parts change, not at every
    look."""
    loop = asyncio.get_running_loop()
    last: float | None = None  # the loop's time of the last ping
    logged: str | None = None  # the parts not ready, as last logged
    while not stop.is_set():
        failures = probes.failures()
        if failures:
            parts = ", ".join(str(f.get("component")) for f in failures)
            if parts != logged:
                logger.info("not pinging heartbeat %s: not ready (%s)", mask_key(key), parts)
                logged = parts
        else:
            logged = None
            if last is None or loop.time() >= last + interval:
                last = loop.time()
                await _ping(key, client, metrics)
        due = 0.0 if last is None else last + interval - loop.time()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), max(due, recheck) if failures else due)


async def _ping(key: str, client: IlertClient, metrics: Metrics) -> None:
    result = await client.ping_heartbeat(key)
    metrics.responses.labels(result.status_label).inc()
    if result.outcome is Outcome.DELIVERED:
        metrics.heartbeats.labels("daemon").inc()
    else:
        logger.warning("heartbeat ping %s failed: %s %s", mask_key(key), result.status_label,
                       result.detail)
