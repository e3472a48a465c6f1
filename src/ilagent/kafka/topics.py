"""Which kind a consumed message is, by the topic option its topic matched.

``-e``/``-r``/``--policy_topic`` take topic names and regular expressions starting
with ``^``, as librdkafka subscribes to them. A message is routed by the first kind whose
names or patterns its topic matches (events, then heartbeats, then policy updates), never by
"not an event topic".
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ilagent.errors import ConfigError


class TopicRouter:
    """``router(topic)`` → ``"event"``, ``"heartbeat"``, ``"policy"`` or None; remembers each
    topic's answer."""

    def __init__(self, *, event: Iterable[str], heartbeat: Iterable[str],
                 policy: Iterable[str] = ()) -> None:
        self._kinds = [(kind, _matchers(topics)) for kind, topics in
                       (("event", event), ("heartbeat", heartbeat), ("policy", policy))]
        self._known: dict[str, str | None] = {}

    def __call__(self, topic: str) -> str | None:
        if topic not in self._known:
            self._known[topic] = next((kind for kind, (names, patterns) in self._kinds
                                       if topic in names or any(p.search(topic) for p in patterns)),
                                      None)
        return self._known[topic]


def _matchers(topics: Iterable[str]) -> tuple[frozenset[str], list[re.Pattern[str]]]:
    names, patterns = set(), []
    for topic in topics:
        if topic.startswith("^"):
            try:
                patterns.append(re.compile(topic))
            except re.error as exc:
                raise ConfigError(f"topic pattern {topic!r} is not a regular expression: "
                                  f"{exc}") from None
        else:
            names.add(topic)
    return frozenset(names), patterns
