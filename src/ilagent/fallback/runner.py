"""Follows the shared circuit and sends the local alarm, its reminders and the all-clear.

:meth:`Fallback.circuit_moved` is a listener of :class:`~ilagent.delivery.gate.Gate`: called on
the event loop at every transition, it only records and wakes. :meth:`Fallback.run` sends what
is due, one notice after the other (an all-clear never overtakes its alarm), each through every
channel at once and each channel bounded by the timeout. A channel that fails is logged and
counted and tried again later (:mod:`ilagent.fallback.alarm`); it never holds up another
channel, a delivery or the event loop. Readiness is not touched: an ilert outage is no reason
to restart the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ilagent import __version__
from ilagent.config import DaemonConfig, FallbackSettings
from ilagent.fallback.alarm import ALARM, ALL_CLEAR, AlarmState, Notice, Step, duration
from ilagent.fallback.channels import (
    Channel,
    ChannelError,
    Mail,
    Mqtt,
    Webhook,
    without_credentials,
)
from ilagent.logs import EACH
from ilagent.metrics import Metrics

if TYPE_CHECKING:
    from ilagent.delivery.engine import Deliverer
    from ilagent.ilert import IlertClient
    from ilagent.spool.worker import SpoolWorker

logger = logging.getLogger(__name__)


class Fallback:
    """The local alarm of one daemon: give it to the gate's listeners, run :meth:`run`."""

    def __init__(
        self,
        *,
        settings: FallbackSettings,
        channels: Sequence[Channel],
        metrics: Metrics,
        backlog: Callable[[], int],
        last_error: Callable[[], str],
        ilert_url: str,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._channels = {channel.name: channel for channel in channels}
        self._state = AlarmState(after=settings.after, repeat=settings.repeat,
                                 channels=tuple(self._channels))
        self._timeout = settings.timeout
        self._metrics = metrics
        self._backlog = backlog
        self._last_error = last_error
        self._ilert_url = without_credentials(ilert_url)
        self._clock = clock
        self._wall = wall
        self._host = socket.gethostname()
        self._outbox: deque[tuple[Step, Notice]] = deque()
        self._changed = asyncio.Event()

    @property
    def raised(self) -> bool:
        """True while the alarm is raised (until ilert answers again)."""
        return self._state.raised

    def circuit_moved(self, is_open: bool) -> None:
        """The gate's listener: the circuit opened or closed. An all-clear is made now, with
        the backlog of the moment ilert answered again."""
        now = self._clock()
        if is_open:
            self._state.opened(now)
        else:
            self._outbox.extend((step, self._notice(step, now))
                                for step in self._state.closed(now))
        self._changed.set()

    async def run(self) -> None:
        """Send what is due, then wait for the next due time or a change, until cancelled."""
        try:
            while True:
                self._changed.clear()
                await self.step()
                due = self._state.next_due()
                timeout = None if due is None else max(0.0, due - self._clock())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout)
        except Exception:  # a bug: said once, loudly; delivery to ilert goes on without it
            logger.exception("the local fallback failed unexpectedly: no more local alarms "
                             "until a restart")
            raise
        finally:
            await self.close()

    async def step(self) -> None:
        """Send every notice that is due now, in order; each through its channels at once."""
        now = self._clock()
        self._outbox.extend((step, self._notice(step, now)) for step in self._state.due(now))
        while self._outbox:
            step, notice = self._outbox.popleft()
            self._announce(notice, step.channels)
            await asyncio.gather(*(self._send(self._channels[name], step, notice)
                                   for name in step.channels))
        self._metrics.fallback_raised.set(1 if self._state.raised else 0)

    async def close(self) -> None:
        """Release the channels (the webhook's connection pool)."""
        for channel in self._channels.values():
            await channel.close()

    def _notice(self, step: Step, now: float) -> Notice:
        wall = self._wall()
        return Notice(kind=step.kind, since=wall - (now - step.opened_at), at=wall,
                      open_for=step.open_for, backlog=self._backlog(),
                      last_error=self._last_error(), ilert_url=self._ilert_url,
                      host=self._host, version=__version__)

    def _announce(self, notice: Notice, channels: tuple[str, ...]) -> None:
        took, by = duration(notice.open_for), ", ".join(channels)
        if notice.kind == ALARM:
            logger.error("ilert has been out of reach for %s (--fallback_after): raising the "
                         "local alarm by %s; %d events wait for ilert (last failure: %s)",
                         took, by, notice.backlog, notice.last_error or "none known",
                         extra=EACH)
        elif notice.kind == ALL_CLEAR:
            logger.warning("ilert answers again after %s: local all-clear by %s; %d events "
                           "to deliver", took, by, notice.backlog, extra=EACH)
        else:
            logger.error("ilert still out of reach after %s: local alarm reminder by %s; %d "
                         "events wait for ilert", took, by, notice.backlog, extra=EACH)

    async def _send(self, channel: Channel, step: Step, notice: Notice) -> None:
        try:
            await asyncio.wait_for(channel.send(notice), self._timeout)
        except ChannelError as exc:
            reason = str(exc)
        except TimeoutError:
            reason = f"no answer within {self._timeout:g} s"
        except Exception as exc:  # a bug in one channel must not end the fallback
            logger.exception("local fallback: the %s channel failed unexpectedly", channel.name)
            reason = type(exc).__name__
        else:
            self._metrics.fallback_alarms.labels(channel.name, notice.kind).inc()
            logger.info("local fallback: %s sent by %s (%s)", notice.kind, channel.name,
                        channel.where)
            return
        self._metrics.fallback_failures.labels(channel.name).inc()
        self._state.failed(step, channel.name, self._clock())
        again = (f"again in {duration(self._state.repeat)} while ilert answers"
                 if notice.kind == ALL_CLEAR else "again with the next reminder")
        logger.error("local fallback: the %s by %s (%s) failed: %s; tried %s", notice.kind,
                     channel.name, channel.where, reason, again, extra=EACH)


def build(config: DaemonConfig, *, metrics: Metrics, client: IlertClient,
          deliverer: Deliverer, worker: SpoolWorker | None) -> Fallback | None:
    """The daemon's fallback with the channels its settings name; None without any."""
    settings = config.fallback
    if settings is None or not settings.channels:
        return None
    channels: list[Channel] = []
    if settings.mqtt_topic and settings.mqtt is not None:
        channels.append(Mqtt(settings.mqtt, settings.mqtt_topic, timeout=settings.timeout))
    if settings.webhook:
        channels.append(Webhook(settings.webhook, timeout=settings.timeout))
    if settings.smtp_host and settings.mail_to:
        channels.append(Mail(host=settings.smtp_host, port=settings.smtp_port,
                             sender=settings.mail_from, recipients=settings.mail_to,
                             timeout=settings.timeout))
    return Fallback(settings=settings, channels=channels, metrics=metrics,
                    backlog=lambda: backlog(deliverer, worker),
                    last_error=lambda: client.last_failure, ilert_url=client.api_url)


def backlog(deliverer: Deliverer, worker: SpoolWorker | None) -> int:
    """Events received and not yet delivered, each counted once: those in delivery (Kafka,
    MQTT without its buffer, heartbeat topics) and the rows of the spool's queue (the HTTP
    intake, MQTT's buffer), whether loaded into delivery already or not."""
    if worker is None:
        return deliverer.pending
    loaded = worker.loaded
    return max(deliverer.pending - loaded, 0) + max(worker.stats.depth, loaded)
