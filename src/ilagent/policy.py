"""Policy message bytes → the escalation-policy level update it asks for, or why not (pure).

ilagent 0.9's rules, in its order: parse; the shared ``--filter_key``/``--filter_val``; the
e-mail at ``--map_key_email`` (dot path, a non-empty string); the shift at ``--map_key_shift``
(a JSON integer or a string of one, else 0) plus ``--shift_offset``, at least 0 — the level's
index; the routing key from ``--policy_routing_keys``: for each name, a top-level key of that
exact name, else a dot path, whose value is a non-empty string; the values joined without a
separator (``location,slot`` → ``powerplantthree50``), names without a value skipped.

Beyond 0.9: routing-key names may be dot paths (0.9 reads top-level keys only; a top-level key
that contains a dot still wins, so 0.9's configurations mean what they meant).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from ilagent.config import MappingRules, PolicyRules
from ilagent.mapping import MISSING, Dropped, DropReason, filter_reason, lookup, parse_object

_INTEGER = re.compile(r"[+-]?\d{1,18}")


@dataclass(frozen=True)
class PolicyUpdate:
    """Put the user with ``email`` on level ``level`` of the policy ``routing_key`` resolves to."""

    email: str
    routing_key: str
    level: int

    def to_json(self) -> str:
        """As stored in the queue file (buffered MQTT policy messages)."""
        return orjson.dumps({"email": self.email, "routingKey": self.routing_key,
                             "level": self.level}).decode()

    @classmethod
    def from_json(cls, text: str) -> PolicyUpdate:
        """Read back :meth:`to_json`; raises ``ValueError``."""
        data = orjson.loads(text)
        if not (isinstance(data, dict) and isinstance(data.get("email"), str)
                and isinstance(data.get("routingKey"), str)
                and isinstance(data.get("level"), int)):
            raise ValueError("not a stored policy update")
        return cls(data["email"], data["routingKey"], data["level"])


def map_policy(rules: PolicyRules, filters: MappingRules,
               payload: bytes | None) -> PolicyUpdate | Dropped:
    """The level update a policy message asks for, or why it yields none."""
    document = parse_object(payload)
    if isinstance(document, Dropped):
        return document
    reason = filter_reason(filters, document)
    if reason:
        return Dropped(DropReason.FILTERED, reason)
    email = lookup(document, rules.map_key_email)
    if not isinstance(email, str) or not email:
        return Dropped(DropReason.NO_EMAIL,
                       f"no e-mail (a non-empty string) at '{rules.map_key_email}'")
    routing_key = rules.routing_key_separator.join(
        value for name in rules.routing_keys
        if isinstance(value := _field(document, name), str) and value)
    if not routing_key:
        return Dropped(DropReason.NO_ROUTING_KEY, (
            f"no routing key: none of the fields {', '.join(rules.routing_keys)} holds a "
            "non-empty string") if rules.routing_keys else
            "no routing key: --policy_routing_keys is not set")
    return PolicyUpdate(email, routing_key, level(document, rules))


def level(document: dict[str, Any], rules: PolicyRules) -> int:
    """The level index: the shift (an integer, or a string of one; else 0) plus the offset,
    at least 0."""
    shift = lookup(document, rules.map_key_shift)
    value = 0
    if isinstance(shift, int) and not isinstance(shift, bool):
        value = shift
    elif isinstance(shift, str) and _INTEGER.fullmatch(shift):
        value = int(shift)
    return max(value + rules.shift_offset, 0)


def _field(document: dict[str, Any], name: str) -> Any:
    """A top-level key of exactly this name, else the dot path."""
    if name in document:
        return document[name]
    value = lookup(document, name)
    return None if value is MISSING else value
