"""What every source does with a message before delivery: its job's ordering lane.

Shared by the Kafka bridge and the spool worker (and by the sources still to come), so that
"events of one alert keep their order" means the same thing everywhere: an alert is its
integration key plus its alert key, trimmed and lower-cased as ilert matches them.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from ilagent.mapping.messages import Mapped
from ilagent.mapping.policy import PolicyUpdate
from ilagent.records import POLICY_PATH as POLICY_PATH  # the path of a queued policy update

POLICY_KEY = "policy"  # the integration-key slot of a policy job: pacing, gate, spool caps


def alert_lane(integration_key: str, alert_key: object) -> Hashable | None:
    """The lane of one alert, or None without a (string, non-empty) alert key."""
    if isinstance(alert_key, str) and alert_key:
        # ilert matches alert keys case-insensitively after trimming
        return ("alert", integration_key, alert_key.strip().lower())
    return None


def event_lane(integration_key: str, event: dict[str, Any]) -> Hashable | None:
    """The lane of an event body: its alert's, or None (no order) without an alert key."""
    return alert_lane(integration_key, event.get("alertKey"))


def message_lane(mapped: Mapped, message_key: bytes | None) -> Hashable | None:
    """A mapped message's lane: its alert's; else that of its message key at its integration
    key (the events of two alert sources never wait for each other, as when two routes take
    messages of one key and one source's key fails); else none."""
    lane = alert_lane(mapped.integration_key, mapped.alert_key)
    if lane is not None:
        return lane
    if message_key:
        return ("key", mapped.integration_key, message_key)
    return None


def heartbeat_lane(integration_key: str) -> Hashable:
    """Pings of one heartbeat key go one after another."""
    return ("heartbeat", integration_key)


def policy_lane(update: PolicyUpdate) -> Hashable:
    """Updates of one level number go one after another, whatever their routing key.

    Two routing keys can resolve to one escalation policy (ilert resolves comma-separated
    keys, the first that names a policy wins), and which policy a key names is only known after
    a call to ilert. Keyed by routing key, two updates of one level raced, and the one read
    later could land first (the level's lock in policy sync serialises them, but not in offset
    order). The level number alone is known before any call, so it is the lane: updates of one
    level of *any* policy wait for each other. Shift changes are rare and paced (40 a minute),
    so the lost concurrency costs nothing that matters.
    """
    return ("policy", update.level)
