"""Kafka fire drills: the drill message produced to the drill topic, to a partition this member
owns, with the header ``ilagent.drill: <drill id>`` (see :mod:`ilagent.drills`).

Owned partitions of the drill topic take turns, so each is proven over time. A member that
owns none of them (more replicas than partitions) skips its Kafka drill: nothing proven,
nothing failed. A consumer that is not ready (no group membership, no broker) fails the drill at
``sent``: that is what a drill is for. The producer is the dead-letter producer's kind
(idempotent, ``acks=all``, the consumer's cluster and security settings); a message it could
not deliver within the drill's deadline is given up (``message.timeout.ms``), and should it
arrive later it belongs to a drill that is over, which no ilagent sends on.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from ilagent.config import KafkaSettings
from ilagent.delivery.stuck import Head
from ilagent.drills.marks import MARK
from ilagent.drills.sending import Sent
from ilagent.kafka.settings import producer_config

logger = logging.getLogger(__name__)

SOURCE = "kafka"


class Owner(Protocol):
    """What the sender asks the Kafka bridge: is it ready, which partitions does it own."""

    def readiness(self) -> dict[str, object] | None: ...

    def heads(self) -> list[Head]: ...


class KafkaDrills:
    """Produces drill messages to ``topic``, to partitions the bridge owns."""

    source = SOURCE

    def __init__(self, *, settings: KafkaSettings, bridge: Owner, topic: str,
                 timeout: float) -> None:
        self._settings = settings
        self._bridge = bridge
        self._topic = topic
        self._timeout = timeout
        self._producer: Producer | None = None
        self._error = ""
        self._turn = 0

    def start(self) -> None:
        config = producer_config(self._settings)
        config["message.timeout.ms"] = max(1000, int(self._timeout * 1000))
        try:
            self._producer = Producer(config, logger=logging.getLogger("ilagent.librdkafka"))
        except (KafkaException, ValueError, TypeError) as exc:
            self._error = f"Kafka refused the drill producer's configuration: {exc}"
            logger.error("%s", self._error)

    async def close(self) -> None:
        if self._producer is not None:
            await asyncio.to_thread(self._producer.flush, 0)

    def owned(self) -> list[int]:
        """The partitions of the drill topic this member owns now."""
        return sorted({int(h.partition) for h in self._bridge.heads()
                       if h.topic == self._topic and h.partition})

    async def send(self, drill_id: str, sample: bytes) -> Sent:
        if self._producer is None:
            return Sent(error=self._error or "no drill producer")
        not_ready = self._bridge.readiness()
        if not_ready is not None:
            return Sent(error=f"the Kafka consumer is not ready ({_why(not_ready)})")
        owned = self.owned()
        if not owned:
            return Sent(skipped=f"this member owns no partition of {self._topic}")
        partition = owned[self._turn % len(owned)]
        self._turn += 1
        error = await asyncio.to_thread(self._produce, partition, sample, drill_id)
        if error:
            return Sent(error=f"producing to {self._topic}[{partition}] failed: {error}")
        return Sent(where=f"{self._topic}[{partition}]")

    def _produce(self, partition: int, sample: bytes, drill_id: str) -> str:
        assert self._producer is not None
        errors: list[str] = []

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                errors.append(error.str())

        try:
            self._producer.produce(self._topic, value=sample, partition=partition,
                                   headers=[(MARK, drill_id.encode())], on_delivery=delivered)
        except (KafkaException, BufferError) as exc:
            return str(exc)
        if self._producer.flush(self._timeout) > 0:
            return "not acknowledged by the broker in time"
        return errors[0] if errors else ""


def _why(readiness: dict[str, object]) -> str:
    """The readiness report in a few words."""
    if readiness.get("missing_topics"):
        return f"missing topics {readiness['missing_topics']}"
    if readiness.get("error"):
        return str(readiness["error"])
    return (f"group {readiness.get('group_state')}, {readiness.get('brokers_up', 0)} "
            f"broker(s) up")
