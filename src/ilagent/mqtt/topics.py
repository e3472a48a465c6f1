"""MQTT topic filters: validation, matching and which kind of message a topic carries (pure).

ilagent 0.9 matches the heartbeat topic exactly and treats every message as an event once the
event topic has a wildcard. Here every configured topic is a real MQTT filter (``+`` one level,
``#`` the rest, including the parent level), for all three kinds; a message is a heartbeat if
a heartbeat filter matches, else a policy update, else an event — ilagent's precedence. Topics
starting with ``$`` (``$SYS/…``) are matched only by filters that name them, as the MQTT
standard says.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

Kind = Literal["heartbeat", "policy", "event"]
SHARE_PREFIX = "$share/"
MAX_TOPIC_BYTES = 65535


def filter_problem(topic: str) -> str | None:
    """Why ``topic`` is not a valid MQTT subscription filter, or None."""
    if not topic:
        return "an MQTT topic cannot be empty"
    if "\x00" in topic:
        return "an MQTT topic cannot contain NUL"
    if len(topic.encode("utf-8", "surrogatepass")) > MAX_TOPIC_BYTES:
        return "an MQTT topic is at most 65,535 bytes"
    if topic.startswith(SHARE_PREFIX):
        return "give the plain topic and --mqtt_shared_group instead of $share/…"
    levels = topic.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return "'#' must be a whole level and the last one"
        if "+" in level and level != "+":
            return "'+' must be a whole level"
    return None


def matches(topic_filter: str, topic: str) -> bool:
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


class TopicClassifier:
    """Which configured kind a received topic belongs to (heartbeat, then policy, then event)."""

    def __init__(self, *, event: Iterable[str] = (), heartbeat: Iterable[str] = (),
                 policy: Iterable[str] = ()) -> None:
        self._kinds: list[tuple[Kind, tuple[str, ...]]] = [
            ("heartbeat", tuple(heartbeat)), ("policy", tuple(policy)), ("event", tuple(event))]
        self._cache: dict[str, Kind | None] = {}

    def __call__(self, topic: str) -> Kind | None:
        """The kind of a received topic, or None when no configured filter matches it."""
        try:
            return self._cache[topic]
        except KeyError:
            pass
        kind = next((k for k, filters in self._kinds
                     if any(matches(f, topic) for f in filters)), None)
        if len(self._cache) < 10_000:  # topics with ids in them must not grow this forever
            self._cache[topic] = kind
        return kind


def subscription(topic_filter: str, shared_group: str | None) -> str:
    """The filter to subscribe to: ``$share/<group>/<filter>`` with a shared group."""
    return f"{SHARE_PREFIX}{shared_group}/{topic_filter}" if shared_group else topic_filter
