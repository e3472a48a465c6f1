"""The daemon's start-up summary: what runs, one INFO line each (``-vv``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ilagent.config import DaemonConfig
from ilagent.logs import mask_key

if TYPE_CHECKING:
    from ilagent.mapping.routes import Route

logger = logging.getLogger("ilagent.daemon")


def log_summary(config: DaemonConfig, routes: Sequence[Route] = ()) -> None:
    """What the daemon runs with, one INFO line each."""
    if config.kafka is not None:
        topics = ", ".join(config.kafka.topics)
        logger.info("Kafka: %s as group %s from %s", topics, config.kafka.group_id,
                    config.kafka.brokers)
    if config.mqtt is not None:
        mqtt = config.mqtt
        logger.info("MQTT %s: %s from %s:%d as %s (QoS %d, %s)", mqtt.version,
                    ", ".join(mqtt.topics), mqtt.host, mqtt.port, mqtt.client_id,
                    min(mqtt.qos, 1), f"queued in {config.db_file}" if mqtt.buffer
                    else "acknowledged after delivery")
    policy_topics = [*(config.kafka.policy_topics if config.kafka else ()),
                     *(config.mqtt.policy_topics if config.mqtt else ())]
    if policy_topics:
        logger.info("escalation-policy sync: %s, routing key from %s, e-mail at %s, shift "
                    "at %s%+d", ", ".join(dict.fromkeys(policy_topics)),
                    ",".join(config.policy.routing_keys), config.policy.map_key_email,
                    config.policy.map_key_shift, config.policy.shift_offset)
    if config.http is not None and config.http.intake:
        spool = (f"Kafka spool topic {config.kafka.spool_topic}"
                 if config.kafka is not None and config.kafka.spool_topic
                 else f"spool file {config.db_file}")
        logger.info("HTTP intake on %s:%d, %s", config.http.host, config.http.port, spool)
    elif config.http is not None:
        logger.info("HTTP probes and metrics on %s:%d (intake off, no spool file)",
                    config.http.host, config.http.port)
    if config.heartbeat_key:
        logger.info("own heartbeat %s every %.0f s", mask_key(config.heartbeat_key),
                    config.heartbeat_interval)
    drill = config.drill
    if drill is not None:
        logger.info("fire drills %s through %s (deadline %.0f s), drill heartbeat %s",
                    "once" if drill.once else f"every {drill.interval:g} s",
                    ", ".join(drill.sources), drill.timeout,
                    mask_key(drill.heartbeat) if drill.heartbeat else "none")
    logger.info("ilert: events to %s, heartbeats to %s", config.ilert.api_url,
                config.ilert.beat_url)
    for route in routes:
        reads = [*route.kafka_topics, *route.mqtt_topics] or ["every event topic"]
        logger.info("route %s: %s, %d condition(s), to %s", route.name, ", ".join(reads),
                    len(route.conditions),
                    mask_key(route.integration_key) if route.integration_key
                    else route.key_field or "the message's own key")
