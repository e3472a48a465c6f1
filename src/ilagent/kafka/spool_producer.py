"""The Kafka spool's writer (``--spool kafka:TOPIC``): an intake event is a 202 only once the
brokers acknowledged it.

One idempotent producer (``acks=all``, ``enable.idempotence``) with the daemon's connection and
security properties (:func:`~ilagent.kafka.settings.producer_config`); a thread polls it for
delivery reports and hands each to the event loop, where :meth:`SpoolProducer.put` waits for
its own up to ``--spool_produce_timeout``. A refusal or no answer in time is
:class:`~ilagent.errors.SpoolUnavailable` (the intake's 503 with ``Retry-After``); a record not
confirmed in time may still be written later — at-least-once: the client's retry can make it
arrive twice, never not at all. The record's format is :mod:`ilagent.records`'.

``/ready/intake`` follows the connection: librdkafka's ``ALL_BROKERS_DOWN`` error marks the
spool unavailable at once, and the next statistics report (every :data:`STATS_INTERVAL_MS`)
showing a connected broker, or the next acknowledgement, marks it available again.

At start the topic's settings are read once (:func:`topic_warnings`): a retention shorter than
:data:`MIN_RETENTION_MS` or compaction could delete events answered 202 before they were sent,
and is one WARNING (the daemon runs on: the topic is the operator's).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource  # not re-exported by admin's stubs

from ilagent.config import KafkaSettings
from ilagent.errors import ConfigError, SpoolUnavailable
from ilagent.kafka.settings import producer_config
from ilagent.logs import mask_key
from ilagent.metrics import Metrics
from ilagent.records import RecordKind, spool_record

logger = logging.getLogger(__name__)

POLL_INTERVAL = 0.1  # seconds the poll thread blocks waiting for delivery reports
CLOSE_FLUSH = 5.0  # the most a shutdown waits for records still on their way
MIN_RETENTION_MS = 7 * 24 * 3600 * 1000  # an ilert outage over a long weekend, and then some
CHECK_TIMEOUT = 10.0  # reading the topic's settings at start
STATS_INTERVAL_MS = 1000  # how soon /ready/intake sees the brokers back after an outage


def topic_warnings(settings: dict[str, str]) -> list[str]:
    """What in a spool topic's settings could delete events answered 202 before they were
    sent (``retention.ms``, ``cleanup.policy``)."""
    found = []
    retention = int(settings.get("retention.ms", "-1") or "-1")
    if 0 <= retention < MIN_RETENTION_MS:
        found.append(f"retention.ms={retention} (under 7 days)")
    if "compact" in settings.get("cleanup.policy", ""):
        found.append(f"cleanup.policy={settings['cleanup.policy']} (compaction keeps only the "
                     "last record of each integration key)")
    return found


def brokers_up(raw: str) -> int | None:
    """How many brokers a librdkafka statistics report shows connected (None: unreadable)."""
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        brokers = json.loads(raw).get("brokers", {})
        return sum(1 for broker in brokers.values() if broker.get("state") == "UP")
    return None


class SpoolProducer:
    """Writes intake events to the spool topic; a :class:`~ilagent.web.spooling.SpoolSink`."""

    def __init__(self, *, settings: KafkaSettings, timeout: float,
                 metrics: Metrics | None = None) -> None:
        assert settings.spool_topic, "a SpoolProducer needs --spool kafka:TOPIC"
        self._topic = settings.spool_topic
        self._settings = settings
        self._timeout = timeout
        self._metrics = metrics
        self._retry_after = max(1, math.ceil(timeout))
        self._producer: Producer | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self.last_error = ""  # what the brokers last refused, or "" since the last ack
        self._down = ""  # librdkafka's word that every broker is down, until one is back
        self._fatal = ""  # the producer can no longer write (librdkafka's fatal error)

    def start(self) -> None:
        """Create the producer and its poll thread; ``ConfigError`` for a property librdkafka
        refuses (no network I/O: the first write connects)."""
        try:
            self._producer = Producer({**producer_config(self._settings),
                                       "statistics.interval.ms": STATS_INTERVAL_MS,
                                       "stats_cb": self._on_stats, "error_cb": self._on_error},
                                      logger=logging.getLogger("ilagent.librdkafka"))
        except (KafkaException, ValueError, TypeError) as exc:
            raise ConfigError(f"Kafka refused the spool producer's configuration: {exc}") \
                from None
        self._thread = threading.Thread(target=self._poll, args=(self._producer,),
                                        name="ilagent-spool-producer", daemon=True)
        self._thread.start()
        threading.Thread(target=self._check_topic, name="ilagent-spool-check",
                         daemon=True).start()

    def _check_topic(self) -> None:
        """Warn once of topic settings that could lose events (a thread: network I/O)."""
        resource = ConfigResource(ConfigResource.Type.TOPIC, self._topic)
        try:
            admin = AdminClient(producer_config(self._settings))
            entries = admin.describe_configs([resource])[resource].result(CHECK_TIMEOUT)
        except Exception as exc:  # a missing topic or ACL: the first write says more
            logger.warning("could not read the settings of the Kafka spool topic %s: %s",
                           self._topic, exc)
            return
        found = topic_warnings({name: str(entry.value) for name, entry in entries.items()})
        if found:
            logger.warning("the Kafka spool topic %s could delete events answered 202 before "
                           "they are sent: %s; use cleanup.policy=delete and a retention of "
                           "7 days or more", self._topic, ", ".join(found))

    def _on_error(self, error: KafkaError) -> None:  # poll thread
        if error.fatal():
            self._fatal = error.str()
            logger.error("the Kafka spool producer failed for good: %s; the intake answers "
                         "503 until the daemon is restarted", self._fatal)
        elif error.code() == KafkaError._ALL_BROKERS_DOWN:
            if not self._down:
                logger.warning("the Kafka spool %s is unavailable: %s; the intake answers 503",
                               self._topic, error.str())
            self._down = error.str()

    def _on_stats(self, raw: str) -> None:  # poll thread
        if self._down and brokers_up(raw):
            self._back()

    def _back(self) -> None:
        if self._down:
            logger.warning("the Kafka spool %s is available again", self._topic)
        self._down = ""

    def _poll(self, producer: Producer) -> None:
        while not self._closing.is_set():
            producer.poll(POLL_INTERVAL)

    async def put(self, kind: RecordKind, *, integration_key: str, path: str,
                  event: str) -> str:
        """Produce the record and wait for the brokers' acknowledgement; its position
        ``topic[partition]@offset``."""
        if self._producer is None or self._closing.is_set():
            self._count("shutdown")
            raise SpoolUnavailable("the daemon is shutting down: nothing was queued, retry "
                                   "later", retry_after=self._retry_after)
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[str] = loop.create_future()

        def on_delivery(error: KafkaError | None, message: Message) -> None:  # poll thread
            loop.call_soon_threadsafe(self._settle, acked, error, message)

        key, value, written = spool_record(kind, integration_key=integration_key, path=path,
                                           event=event)
        headers: list[tuple[str, str | bytes | None]] = [*written]
        try:
            self._producer.produce(self._topic, value=value, key=key, headers=headers,
                                   on_delivery=on_delivery)
        except (BufferError, KafkaException) as exc:  # the local queue is full, or refused
            logger.error("could not spool an event for %s to %s: %s", mask_key(integration_key),
                         self._topic, exc)
            self._count("refused")
            raise SpoolUnavailable("the event could not be spooled; nothing was queued, retry "
                                   "later", retry_after=self._retry_after) from None
        started = loop.time()
        try:
            position = await asyncio.wait_for(acked, self._timeout)
        except SpoolUnavailable:
            self._count("refused")
            raise
        except TimeoutError:
            self._count("timeout")
            logger.warning("the brokers did not acknowledge an event for %s on %s within %g s "
                           "(--spool_produce_timeout): answered 503; it may still be stored",
                           mask_key(integration_key), self._topic, self._timeout)
            raise SpoolUnavailable(f"the Kafka spool did not confirm the event within "
                                   f"{self._timeout:g} s; it may still be stored (a retry can "
                                   "deliver it twice), retry later",
                                   retry_after=self._retry_after) from None
        self._count("acked", waited=loop.time() - started)
        return position

    def _count(self, result: str, *, waited: float | None = None) -> None:
        if self._metrics is not None:
            self._metrics.spool_produced.labels(result).inc()
            if waited is not None:
                self._metrics.spool_produce_seconds.observe(waited)

    def _settle(self, acked: asyncio.Future[str], error: KafkaError | None,
                message: Message) -> None:
        if error is not None:
            self.last_error = error.str()
        else:
            self.last_error = ""
            self._back()
        if acked.done():  # the wait timed out (the 503 is out) or was cancelled
            return
        if error is not None:
            logger.error("the Kafka spool %s refused an event: %s", self._topic, error.str())
            acked.set_exception(SpoolUnavailable(
                f"the Kafka spool refused the event ({error.str()}); retry later",
                retry_after=self._retry_after))
        else:
            acked.set_result(f"{message.topic()}[{message.partition()}]@{message.offset()}")

    def readiness(self) -> dict[str, Any] | None:
        """None while the producer runs, a broker is connected and its last write was
        acknowledged (or none was made), else why not, for ``/ready/intake``."""
        if self._producer is None or self._closing.is_set():
            return {"error": "the spool producer is not running"}
        if self._fatal or self._down:
            return {"error": self._fatal or self._down, "topic": self._topic}
        if self.last_error:
            return {"error": self.last_error, "topic": self._topic}
        return None

    async def close(self, timeout: float = CLOSE_FLUSH) -> None:
        """Stop polling, then wait up to ``timeout`` s for records still on their way."""
        self._closing.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        if self._producer is not None:
            left = await asyncio.to_thread(self._producer.flush, max(0.0, timeout))
            if left:
                logger.warning("shutdown: %d record(s) to the Kafka spool %s were not "
                               "acknowledged; their clients were answered 503", left,
                               self._topic)
