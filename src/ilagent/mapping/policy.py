"""Policy message bytes → the escalation-policy level update it asks for, or why not (pure).

ilagent 0.9's rules, in its order: parse; the shared ``--filter_key``/``--filter_val``; the
e-mail at ``--map_key_email`` (dot path, a non-empty string); the shift at ``--map_key_shift``
(a JSON integer or a string of one, else 0) plus ``--shift_offset``, at least 0 — the level's
index; the routing key from ``--policy_routing_keys``: for each name, a top-level key of that
exact name, else a dot path, whose value is a non-empty string; the values joined without a
separator (``location,slot`` → ``powerplantthree50``), names without a value skipped.

Beyond 0.9: routing-key names may be dot paths (0.9 reads top-level keys only; a top-level key
that contains a dot still wins, so 0.9's configurations mean what they meant). What 0.9 passes
over in silence — a routing-key field the message does not have (a name in the wrong case) or
that is not a string, a shift that is missing or not an integer — is named in the update's
``warnings`` (``ilagent map --policy`` prints them and ``--check`` fails on them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from ilagent.config import MappingRules, PolicyRules
from ilagent.mapping.messages import (
    MISSING,
    Dropped,
    DropReason,
    filter_reason,
    lookup,
    parse_object,
)

_INTEGER = re.compile(r"[+-]?\d{1,18}")


@dataclass(frozen=True)
class PolicyUpdate:
    """Put the user with ``email`` on level ``level`` of the policy ``routing_key`` resolves to."""

    email: str
    routing_key: str
    level: int
    warnings: tuple[str, ...] = field(default=(), compare=False)

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
    warnings: list[str] = []
    values = []
    for name in rules.routing_keys:
        value = _field(document, name)
        if isinstance(value, str) and value:
            values.append(value)
        elif value is MISSING:
            warnings.append(f"--policy_routing_keys '{name}' is not in the message")
        else:
            warnings.append(f"--policy_routing_keys '{name}' is not a non-empty string; skipped")
    routing_key = rules.routing_key_separator.join(values)
    if not routing_key:
        return Dropped(DropReason.NO_ROUTING_KEY, (
            f"no routing key: none of the fields {', '.join(rules.routing_keys)} holds a "
            "non-empty string") if rules.routing_keys else
            "no routing key: --policy_routing_keys is not set")
    shift = lookup(document, rules.map_key_shift)
    if shift is MISSING:
        warnings.append(f"--map_key_shift '{rules.map_key_shift}' is not in the message; "
                        "shift 0 assumed")
    elif _shift(shift) is None:
        warnings.append(f"--map_key_shift '{rules.map_key_shift}' is not an integer; "
                        "shift 0 assumed")
    return PolicyUpdate(email, routing_key, level(document, rules), tuple(warnings))


def level(document: dict[str, Any], rules: PolicyRules) -> int:
    """The level index: the shift (an integer, or a string of one; else 0) plus the offset,
    at least 0."""
    return max((_shift(lookup(document, rules.map_key_shift)) or 0) + rules.shift_offset, 0)


def _shift(shift: Any) -> int | None:
    """A shift value as 0.9 reads it: a JSON integer or a string of one; else None."""
    if isinstance(shift, int) and not isinstance(shift, bool):
        return shift
    if isinstance(shift, str) and _INTEGER.fullmatch(shift):
        return int(shift)
    return None


def _field(document: dict[str, Any], name: str) -> Any:
    """A top-level key of exactly this name, else the dot path (``MISSING`` when neither)."""
    if name in document:
        return document[name]
    return lookup(document, name)
