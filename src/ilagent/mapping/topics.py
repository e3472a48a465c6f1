"""Which kind of message a topic carries: one classifier, one matcher interface (pure).

Every source is configured with topics per kind — events (``-e``), heartbeats (``-r``) and
policy updates (``--policy_topic``) — and a received message is of the first kind whose topics
match its topic (never "not an event topic"). How a configured topic matches depends on the
source, behind one interface, :data:`TopicMatcher`:

* :func:`kafka_topics`: topic names, and regular expressions starting with ``^`` (as
  librdkafka subscribes to them); Kafka asks events, then heartbeats, then policy updates;
* :func:`mqtt_filters`: MQTT filters (``+`` one level, ``#`` the rest including the parent
  level; ``$SYS/…`` topics only by filters that name them, as the standard says); MQTT asks
  heartbeats, then policy updates, then events — ilagent 0.9's precedence for each.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Sequence

from ilagent.errors import ConfigError

MAX_KNOWN = 10_000  # topics remembered; topics with ids in them must not grow this forever

TopicMatcher = Callable[[str], bool]  # does a configured set of topics match this topic?


class Kind(enum.StrEnum):
    """What a message of a topic is."""

    EVENT = "event"
    HEARTBEAT = "heartbeat"
    POLICY = "policy"


class Classifier:
    """``classify(topic)``: the first kind whose matcher accepts the topic, or None."""

    def __init__(self, kinds: Sequence[tuple[Kind, TopicMatcher]]) -> None:
        self._kinds = list(kinds)
        self._known: dict[str, Kind | None] = {}

    def __call__(self, topic: str) -> Kind | None:
        try:
            return self._known[topic]
        except KeyError:
            pass
        kind = next((k for k, match in self._kinds if match(topic)), None)
        if len(self._known) < MAX_KNOWN:
            self._known[topic] = kind
        return kind


def kafka_topics(options: Iterable[str]) -> TopicMatcher:
    """A matcher of Kafka topic options: names, and regexes starting with ``^``; raises
    ``ConfigError`` for a pattern that is not a regular expression."""
    names, patterns = set(), []
    for option in options:
        if option.startswith("^"):
            try:
                patterns.append(re.compile(option))
            except re.error as exc:
                raise ConfigError(f"topic pattern {option!r} is not a regular expression: "
                                  f"{exc}") from None
        else:
            names.add(option)
    frozen = frozenset(names)
    return lambda topic: topic in frozen or any(p.search(topic) for p in patterns)


def mqtt_filters(filters: Iterable[str]) -> TopicMatcher:
    """A matcher of MQTT topic filters."""
    wanted = tuple(filters)
    return lambda topic: any(filter_matches(f, topic) for f in wanted)


def filter_matches(topic_filter: str, topic: str) -> bool:
    """True when the MQTT filter ``topic_filter`` matches the topic name ``topic``."""
    if topic.startswith("$") and not topic_filter.startswith("$"):
        return False
    wanted = topic_filter.split("/")
    levels = topic.split("/")
    for index, part in enumerate(wanted):
        if part == "#":
            return True  # also the parent level: 'a/#' matches 'a'
        if index >= len(levels):
            return False
        if part != "+" and part != levels[index]:
            return False
    return len(levels) == len(wanted)
