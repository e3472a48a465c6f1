"""How a drill message is sent through a source: the :class:`DrillSender` each drilled source
has, what it answers (:class:`Sent`), and the HTTP intake's own (:class:`IntakeDrills`).

The Kafka sender (:mod:`ilagent.kafka.drills`) produces to a partition this member owns, the
MQTT one (:mod:`ilagent.mqtt.drills`) publishes with a user property; both live with their
source, the only modules that may load its client library. The intake's posts to the daemon's
own ``/api/events`` (loopback when it listens on every address), with the drill header and the
first ``--http_token`` (or the token file's first token) when a token is required.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ilagent.config import HttpSettings
from ilagent.drills.events import intake_event
from ilagent.drills.marks import INTAKE, INTAKE_HEADER
from ilagent.drills.rounds import Stage

if TYPE_CHECKING:
    import aiohttp

logger = logging.getLogger(__name__)

EXCERPT = 200


@dataclass(frozen=True)
class Sent:
    """What a sender did with a drill message: sent (where), skipped (why) or failed (why)."""

    where: str = ""
    skipped: str = ""
    error: str = ""
    stage: Stage = Stage.SENT  # the stage an error fails (the intake's 400: mapped)


class DrillSender(Protocol):
    """One drilled source's way of sending a drill message through itself."""

    source: str  # kafka, mqtt, http

    def start(self) -> None:
        """Get ready to send (a producer, a session); errors are reported by :meth:`send`."""

    async def send(self, drill_id: str, sample: bytes) -> Sent:
        """Send the sample, marked with ``drill_id``, through the source."""

    async def close(self) -> None:
        """Let go of what :meth:`start` made."""


class IntakeDrills:
    """Posts an intake drill's event to the daemon's own ``/api/events``."""

    source = INTAKE

    def __init__(self, *, settings: HttpSettings, timeout: float) -> None:
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.host,
                                                                          settings.host)
        host = f"[{host}]" if ":" in host else host
        self._url = f"http://{host}:{settings.port}/api/events"
        self._settings = settings
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._failures: tuple[type[BaseException], ...] = ()

    def start(self) -> None:
        # aiohttp is imported here, not with the module: a daemon serving no HTTP never loads it
        import aiohttp

        # the daemon's own address: never through HTTPS_PROXY / HTTP_PROXY (a proxy cannot
        # reach this host's loopback); the drill's event goes on to ilert by the ilert client
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout))
        self._failures = (aiohttp.ClientError, TimeoutError, OSError)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, drill_id: str, sample: bytes) -> Sent:
        event = intake_event(sample, source=self.source, drill_id=drill_id)
        if event is None:  # refused at start; a file changed since cannot get here
            return Sent(error="the drill message has no integrationKey", stage=Stage.MAPPED)
        assert self._session is not None
        headers = {INTAKE_HEADER: drill_id}
        token = await asyncio.to_thread(self._token)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with self._session.post(self._url, json=event, headers=headers) as answer:
                text = await answer.text()
                status = answer.status
        except self._failures as exc:
            return Sent(error=f"POST {self._url} failed: {exc or type(exc).__name__}")
        if status == 202:
            return Sent(where=f"POST /api/events: {text.strip()[:EXCERPT]}")
        why = f"the intake answered {status}: {text.strip()[:EXCERPT]}"
        return Sent(error=why, stage=Stage.MAPPED if status == 400 else Stage.SENT)

    def _token(self) -> str | None:
        """A valid bearer token: the first given, else the token file's first (read now)."""
        if self._settings.tokens:
            return self._settings.tokens[0]
        if self._settings.token_file is None:
            return None
        try:
            with open(self._settings.token_file, encoding="utf-8") as handle:
                lines = [line.strip() for line in handle]
        except OSError as exc:
            logger.warning("intake drill: cannot read the token file %s: %s",
                           self._settings.token_file, exc.strerror or exc)
            return None
        return next((line for line in lines if line and not line.startswith("#")), None)
