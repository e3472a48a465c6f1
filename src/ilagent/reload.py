"""SIGHUP: the routes and templates of the config file, and the token file, read again.

The new ``[[route]]`` s are checked whole before anything changes: a file that does not load —
not TOML, a route that does not parse, a template with a syntax error, no routes left, or a
route reading a topic the daemon is not subscribed to (that takes a restart) — keeps the running
routes and logs one ERROR line saying why. Messages already read keep the routes they were
read with; the next batch is read by the new ones. Everything else of the configuration (flags,
topics, brokers) takes a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from ilagent.config import ROUTE_TABLE, load_toml
from ilagent.errors import ConfigError
from ilagent.logs import register_secret
from ilagent.mapping.route_tables import load_routes
from ilagent.mapping.routes import Route
from ilagent.mapping.topics import filter_matches

logger = logging.getLogger(__name__)


class Routed(Protocol):
    """A source whose messages the routes read (the Kafka and MQTT bridges)."""

    routes: tuple[Route, ...]


def reload_routes(path: str, sources: Sequence[Routed], *, kafka_topics: Sequence[str] = (),
                  mqtt_topics: Sequence[str] = ()) -> bool:
    """Load the routes of ``path`` and hand them to ``sources``; False (one ERROR line, the
    running routes kept) when they do not load or need a topic the daemon does not read."""
    try:
        routes = checked_routes(path, kafka_topics=kafka_topics, mqtt_topics=mqtt_topics)
    except ConfigError as exc:
        logger.error("SIGHUP: %s; the running routes stay", exc)
        return False
    for route in routes:
        register_secret(route.integration_key, key=True)
    for source in sources:
        source.routes = routes
    logger.warning("SIGHUP: %d route(s) loaded from %s: %s", len(routes), path,
                   ", ".join(r.name for r in routes))
    return True


def checked_routes(path: str, *, kafka_topics: Sequence[str],
                   mqtt_topics: Sequence[str]) -> tuple[Route, ...]:
    """The routes of ``path``, each reading only topics the daemon reads; ``ConfigError``."""
    document = load_toml(path)
    if ROUTE_TABLE not in document:
        raise ConfigError(f"{path} has no [[route]] any more (going back to the mapping flags "
                          "takes a restart)")
    routes = load_routes(document[ROUTE_TABLE], where=path)
    for route in routes:
        for topic in route.kafka_topics:
            if topic not in kafka_topics:
                raise ConfigError(f"route {route.name} reads the Kafka topic {topic!r}, which "
                                  "the daemon does not consume (a new topic takes a restart)")
        for topic_filter in route.mqtt_topics:
            if not any(topic_filter == have or filter_matches(have, topic_filter)
                       for have in mqtt_topics):
                raise ConfigError(f"route {route.name} reads the MQTT topics {topic_filter!r}, "
                                  "which the daemon does not subscribe to (a new subscription "
                                  "takes a restart)")
    return routes
