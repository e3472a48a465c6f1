"""Dead letters of the Kafka path: the message, unchanged, to ``--dlq_topic`` with reason headers.

Without ``--dlq_topic`` a dead letter is logged at ERROR. With it, the message is produced
(idempotent, ``acks=all``) with ``ilagent.*`` headers naming the reason, ilert's answer and
the source position, and only then is its offset finished; a failing produce is retried with
backoff until it lands or the partition is revoked (then the next owner reads it again).

Each dead letter is one line with its reason, ilert's status and the detail: the delivery
engine's, when ilert refused the event, else this module's (a WARNING naming the DLQ topic, or
the ERROR above).
"""

from __future__ import annotations

import asyncio
import logging

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from ilagent.config import KafkaSettings, RetryPolicy
from ilagent.delivery import backoff
from ilagent.errors import ConfigError
from ilagent.kafka.partitions import PartitionState, origin
from ilagent.kafka.settings import producer_config
from ilagent.logs import EACH, mask

logger = logging.getLogger(__name__)

DLQ_FLUSH_TIMEOUT = 10.0
DETAIL_EXCERPT = 500

Headers = list[tuple[str, str | bytes | None]]


class DeadLetterWriter:
    """Writes undeliverable messages to the DLQ topic, or logs them when there is none."""

    def __init__(self, *, settings: KafkaSettings, policy: RetryPolicy) -> None:
        self._topic = settings.dlq_topic
        self._settings = settings
        self._policy = policy
        self._producer: Producer | None = None

    def start(self) -> None:
        """Create the producer (only with a DLQ topic); raises ``ConfigError`` for a property
        librdkafka refuses."""
        if self._topic:
            try:
                self._producer = Producer(producer_config(self._settings),
                                          logger=logging.getLogger("ilagent.librdkafka"))
            except (KafkaException, ValueError, TypeError) as exc:
                raise ConfigError(f"Kafka refused the DLQ producer's configuration: {exc}") \
                    from None

    async def close(self, timeout: float = DLQ_FLUSH_TIMEOUT) -> None:
        """Wait up to ``timeout`` s for what is still being produced."""
        if self._producer is not None:
            await asyncio.to_thread(self._producer.flush, min(timeout, DLQ_FLUSH_TIMEOUT))

    async def write(self, state: PartitionState, message: Message, *, reason: str, detail: str,
                    status: str, logged: bool = False, route: str = "") -> bool:
        """Store the message as a dead letter; False if the partition was revoked first.
        ``logged``: the delivery engine wrote its ERROR line already (one line per dead letter).
        ``route``: the ``[[route]]`` whose event failed (an ``ilagent.route`` header: each failed
        event of a message fanned out to several routes is a dead letter of its own)."""
        where = origin(message) + (f" (route {route})" if route else "")
        why = " ".join(filter(None, (reason, status))) + (f": {detail}" if detail else "")
        if self._producer is None:
            (logger.debug if logged else logger.error)(
                "dead letter %s: %s (no --dlq_topic; message dropped)", where, why, extra=EACH)
            return True
        headers: Headers = [
            ("ilagent.reason", reason.encode()),
            ("ilagent.detail", mask(detail)[:DETAIL_EXCERPT].encode()),
            ("ilagent.http_status", status.encode()),
            ("ilagent.source.topic", state.topic.encode()),
            ("ilagent.source.partition", str(message.partition()).encode()),
            ("ilagent.source.offset", str(message.offset()).encode()),
            *([("ilagent.route", route.encode())] if route else []),
            *(message.headers() or []),
        ]
        attempt = 0
        while not state.revoked:
            attempt += 1
            error = await asyncio.to_thread(self._produce, message, headers)
            if error is None:
                (logger.debug if logged else logger.warning)(
                    "dead-lettered %s to %s: %s", where, self._topic, why, extra=EACH)
                return True
            delay = backoff.delay(self._policy, attempt)
            logger.error("could not write %s to the DLQ topic (%s); retrying in %.1f s",
                         where, error, delay)
            await asyncio.sleep(delay)
        return False

    def _produce(self, message: Message, headers: Headers) -> str | None:
        assert self._producer is not None and self._topic is not None
        errors: list[str] = []

        def on_delivery(error: KafkaError | None, _msg: Message) -> None:
            if error is not None:
                errors.append(error.str())

        try:
            self._producer.produce(self._topic, value=message.value(), key=message.key(),
                                   headers=headers, on_delivery=on_delivery)
        except (KafkaException, BufferError) as exc:
            return str(exc)
        if self._producer.flush(DLQ_FLUSH_TIMEOUT) > 0:
            return "timed out"
        return errors[0] if errors else None
