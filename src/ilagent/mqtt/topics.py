"""MQTT topic filters as the broker takes them: validation, and shared subscriptions (pure).

ilagent 0.9 matches the heartbeat topic exactly and treats every message as an event once the
event topic has a wildcard. Here every configured topic is a real MQTT filter, for all three
kinds; matching a received topic against them, and which kind it carries, is the mapping's
(:func:`ilagent.mapping.topics.mqtt_filters`), shared with Kafka's topic options.
"""

from __future__ import annotations

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


def subscription(topic_filter: str, shared_group: str | None) -> str:
    """The filter to subscribe to: ``$share/<group>/<filter>`` with a shared group."""
    return f"{SHARE_PREFIX}{shared_group}/{topic_filter}" if shared_group else topic_filter
