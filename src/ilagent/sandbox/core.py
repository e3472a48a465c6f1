"""The sandbox's rules: its config, the alert lifecycle, rate limits, counters and publication.

Everything here is synchronous and runs on the event loop; the HTTP layer (``api.py``) only
translates requests into these calls. Alert keys are scoped to their integration key, as ilert
scopes them to their alert source, and compared trimmed and case-insensitively. Users,
escalation policies and API keys live in :class:`~.policies.PolicyBook` (``self.policies``);
the heartbeat monitors and alert sources that exist, in two :class:`KnownKeys`
(``self.heartbeat_keys``, ``self.integration_keys``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..config import DEFAULT_AGENT_URL
from ..events import EventError
from ..logs import register_secret
from .faults import FaultBook, FixedWindowLimiter
from .policies import PolicyBook, Seeded
from .records import Alert, mask
from .seed import Seed
from .store import Store
from .stream import Hub

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
EVENTS_PER_MINUTE = 50  # ilert's published limit per alert-source integration key
PINGS_PER_MINUTE = 5  # ilert's published limit per heartbeat key
API_CALLS_PER_MINUTE = 120  # ilert's published limit of REST calls per user API key
DEFAULT_PRIORITY = "HIGH"
FLUSH_INTERVAL_S = 0.2  # how long writes may wait in memory before reaching SQLite

NEW_ALERT_CREATED = "NEW_ALERT_CREATED"
EVENT_APPENDED = "EVENT_APPENDED"
ALERT_ACCEPTED = "ALERT_ACCEPTED"
ALERT_RESOLVED = "ALERT_RESOLVED"
COMMENT_ADDED = "COMMENT_ADDED"
NO_OPEN_ALERT_WITH_KEY = "NO_OPEN_ALERT_WITH_KEY"

# eventType -> (status the alert moves to, or None to keep it; responseCode)
_TRANSITIONS: dict[str, tuple[str | None, str]] = {
    "ACCEPT": ("ACCEPTED", ALERT_ACCEPTED),
    "RESOLVE": ("RESOLVED", ALERT_RESOLVED),
    "COMMENT": (None, COMMENT_ADDED),
}


@dataclass(frozen=True)
class SandboxConfig:
    """How to run the sandbox; ``db_path`` None keeps everything in memory.

    ``seed`` (users, policies, API keys, heartbeat and integration keys) is where the policy
    state and the known keys start and what a reset returns to; with ``rate_limit``, events
    get ``rate_limit_per_minute`` per integration key and the policy calls
    ``api_rate_limit_per_minute`` per API key.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    db_path: str | None = None
    rate_limit: bool = False
    rate_limit_per_minute: int = EVENTS_PER_MINUTE
    api_rate_limit_per_minute: int = API_CALLS_PER_MINUTE
    seed: Seed = field(default_factory=Seed)
    agent_url: str = DEFAULT_AGENT_URL  # the page links each alert to its /trace there; "": none

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"sandbox port must be 0-65535, not {self.port}")
        if self.rate_limit_per_minute < 1 or self.api_rate_limit_per_minute < 1:
            raise ValueError("sandbox rate limits must be at least 1 per minute")


@dataclass(frozen=True)
class Accepted:
    """An event the sandbox took: what it answered and what it changed."""

    response_code: str
    alert: Alert
    event: dict[str, Any]


class KnownKeys:
    """The keys of one kind that exist (heartbeat monitors, alert sources).

    Open while none is seeded: every key is known then, so the demo and quick tries need no
    seed. Once one is seeded only seeded keys are; :meth:`reset` goes back to ``base``.
    """

    def __init__(self, base: Iterable[str] = ()) -> None:
        self._base = tuple(base)
        self._keys = set(self._base)

    def __contains__(self, key: object) -> bool:
        return not self._keys or key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, keys: Iterable[str]) -> None:
        """These keys exist too."""
        self._keys.update(keys)

    def reset(self) -> None:
        """Back to the startup seed."""
        self._keys = set(self._base)


def utc_now() -> str:
    """The current time as ISO 8601 UTC with milliseconds, e.g. ``2026-01-02T03:04:05.678Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Sandbox:
    """The state and rules behind the HTTP routes."""

    def __init__(
        self,
        config: SandboxConfig,
        store: Store,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.store = store
        self.monotonic = monotonic
        self.faults = FaultBook()
        self.hub = Hub()
        for key in config.seed.api_keys:
            register_secret(key)
        self.policies = PolicyBook(config.seed, clock=utc_now)
        self.heartbeat_keys = KnownKeys(config.seed.heartbeat_keys)
        self.integration_keys = KnownKeys(config.seed.integration_keys)
        self._event_limiter = FixedWindowLimiter(config.rate_limit_per_minute)
        self._ping_limiter = FixedWindowLimiter(PINGS_PER_MINUTE)
        self._api_limiter = FixedWindowLimiter(config.api_rate_limit_per_minute)
        self._flush_timer: asyncio.TimerHandle | None = None
        self._stopping = asyncio.Event()
        self.in_flight = 0  # requests held by a scripted latency, not yet answered or recorded

    def stop_waiting(self) -> None:
        """Server shutdown: end the streams and cut scripted latencies short."""
        self._stopping.set()
        self.hub.close()

    async def delay(self, seconds: float) -> None:
        """Wait ``seconds`` (a scripted latency), or less if the server shuts down meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    def close(self) -> None:
        """Write everything out and close the store; call once the server has stopped."""
        self.stop_waiting()
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self.store.close()

    # -- the ilert side ---------------------------------------------------------------------

    def event_allowed(self, integration_key: str) -> bool:
        """Count an event against its key's rate limit; False means answer 429."""
        if not self.config.rate_limit:
            return True
        return self._event_limiter.allow(integration_key, now=self.monotonic())

    def ping_allowed(self, key: str) -> bool:
        """Count a ping against its key's rate limit; False means answer 429."""
        if not self.config.rate_limit:
            return True
        return self._ping_limiter.allow(key, now=self.monotonic())

    def api_call_allowed(self, api_key: str) -> bool:
        """Count a policy call against its API key's rate limit; False means answer 429."""
        if not self.config.rate_limit:
            return True
        return self._api_limiter.allow(api_key, now=self.monotonic())

    def seed(self, seed: Seed) -> Seeded:
        """Add users, policies, API keys (all or nothing), heartbeat and integration keys, and
        show the policies on the page."""
        for key in seed.api_keys:
            register_secret(key)
        seeded = self.policies.apply(seed)
        self.heartbeat_keys.add(seed.heartbeat_keys)
        self.integration_keys.add(seed.integration_keys)
        self.hub.publish({"type": "policies", "policies": self.policies.policies()})
        logger.info(
            "sandbox seeded: %s users, %s policies, %s API keys, %s heartbeat keys, "
            "%s integration keys",
            len(seeded.users),
            len(seeded.policies),
            seeded.api_keys,
            len(seed.heartbeat_keys),
            len(seed.integration_keys),
        )
        return seeded

    def submit(
        self,
        event: dict[str, Any],
        *,
        body: dict[str, Any],
        text: str,
        path: str,
        route: str | None = None,
    ) -> Accepted:
        """Apply a validated event to the alerts; raises EventError NO_OPEN_ALERT_WITH_KEY.

        ``event`` is the normalised event (``validate_event``), ``body`` what was received and
        ``text`` its JSON text; ``route`` the ilagent route that sent it (its request header).
        """
        at = utc_now()
        integration_key: str = event["integrationKey"]
        event_type: str = event["eventType"]
        alert_key: str | None = event.get("alertKey")
        alert = self.store.open_alert(integration_key, alert_key) if alert_key else None
        if event_type == "ALERT":
            if alert is None:
                alert = self.store.insert_alert(
                    alert_key=alert_key or uuid.uuid4().hex,
                    integration_key=integration_key,
                    summary=event["summary"],
                    details=event.get("details"),
                    priority=event.get("priority", DEFAULT_PRIORITY),
                    at=at,
                )
                code = NEW_ALERT_CREATED
                logger.debug("sandbox alert %s opened (key %s)", alert.id, mask(integration_key))
            else:
                code = EVENT_APPENDED
        else:
            if alert is None:
                raise EventError(
                    "alertKey",
                    NO_OPEN_ALERT_WITH_KEY,
                    f"no open alert with key '{alert_key}'"
                    if alert_key
                    else f"{event_type} needs the 'alertKey' of an open alert",
                )
            new_status, code = _TRANSITIONS[event_type]
            alert.status = new_status or alert.status
        record = self.store.insert_event(
            at=at,
            path=path,
            integration_key=integration_key,
            event_type=event_type,
            alert_id=alert.id,
            body=body,
            text=text,
            route=route,
        )
        alert.event_count += 1
        alert.last_at = at
        alert.rev = record["seq"]
        self.store.save_alert(alert)
        return Accepted(code, alert, record)

    def ping(self, key: str) -> None:
        """Count one heartbeat ping."""
        self.store.ping(key, at=utc_now())
        self._schedule_flush()

    def record(
        self,
        *,
        method: str,
        path: str,
        status: int,
        body: Any,
        text: str | None,
        user_agent: str | None,
        integration_key: str | None,
        answer: Any,
        answer_text: str,
        accepted: Accepted | None = None,
        policy: dict[str, Any] | None = None,
        route: str | None = None,
    ) -> None:
        """Record an answered /api request, count it and push it to the open streams.

        ``body`` is the parsed JSON body (None if there was none), ``text`` its JSON text;
        ``answer`` is what the sandbox answered (a JSON object, a plain text, or None for no
        body) and ``answer_text`` its JSON text; ``policy``
        is the escalation policy the request changed, if any; ``route`` the ilagent route that
        sent it (``X-Ilagent-Route``), if any.
        """
        request = self.store.insert_request(
            at=accepted.event["time"] if accepted else utc_now(),
            method=method,
            path=path,
            status=status,
            body=body,
            text=text,
            user_agent=user_agent,
            integration_key=integration_key,
            answer=answer,
            answer_text=answer_text,
            route=route,
        )
        self._schedule_flush()
        if self.hub.listening:
            self.hub.publish(
                {
                    "type": "request",
                    "request": request,
                    "event": accepted.event if accepted else None,
                    "alert": accepted.alert.to_json() if accepted else None,
                    "policy": policy,
                    "stats": self.stats(),
                }
            )

    # -- the inspection side ----------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Answered /api requests (2xx accepted, 4xx/5xx rejected, per status), and those held."""
        counts = self.store.status_counts()
        accepted = sum(n for status, n in counts.items() if status < 400)
        rejected = sum(n for status, n in counts.items() if status >= 400)
        by_status = {str(status): n for status, n in sorted(counts.items())}
        return {
            "accepted": accepted,
            "rejected": rejected,
            "byStatus": by_status,
            "inFlight": self.in_flight,
        }

    def alerts(self, *, status: str | None, limit: int | None) -> list[dict[str, Any]]:
        """Alerts newest first, each with the seqs of its events."""
        alerts = self.store.alerts(status=status, limit=limit)
        events = self.store.event_ids([alert.id for alert in alerts])
        return [alert.to_json(events=events[alert.id]) for alert in alerts]

    def reset(self) -> None:
        """Forget alerts, events, requests, heartbeats, counters, faults and rate windows;
        users, policies, API keys, heartbeat and integration keys go back to the startup seed."""
        self.store.reset()
        self.faults.clear()
        self.policies.reset()
        self.heartbeat_keys.reset()
        self.integration_keys.reset()
        for limiter in (self._event_limiter, self._ping_limiter, self._api_limiter):
            limiter.clear()
        message = {"type": "reset", "stats": self.stats(), "policies": self.policies.policies()}
        self.hub.publish(message)
        logger.info("sandbox reset")

    def _schedule_flush(self) -> None:
        if self._flush_timer is None:
            loop = asyncio.get_running_loop()
            self._flush_timer = loop.call_later(FLUSH_INTERVAL_S, self._flush)

    def _flush(self) -> None:
        self._flush_timer = None
        try:
            self.store.flush()
        except sqlite3.Error:
            # the writes stay buffered and the next flush retries them
            logger.exception("sandbox could not write its state; retrying")
            self._schedule_flush()


SANDBOX = web.AppKey("sandbox", Sandbox)
