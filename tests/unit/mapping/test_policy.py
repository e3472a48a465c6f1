"""Policy messages → level updates, ilagent 0.9's rules (plus dot-path routing keys)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ilagent.config import MappingRules, PolicyRules
from ilagent.mapping.messages import Dropped
from ilagent.mapping.policy import PolicyUpdate, map_policy

RULES = PolicyRules(routing_keys=("location", "slot"))
NO_FILTER = MappingRules()


def run(payload: Any, rules: PolicyRules = RULES,
        filters: MappingRules = NO_FILTER) -> PolicyUpdate | Dropped:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return map_policy(rules, filters, raw)


def msg(shift: Any = 0, **extra: Any) -> dict[str, Any]:
    return {"data": {"email": "ann@example.com", "shift": shift}, "location": "powerplantthree",
            "slot": "50", **extra}


@pytest.mark.parametrize(("shift", "offset", "level"), [
    (0, 0, 0), (2, 0, 2), ("3", 0, 3), ("+3", 0, 3), ("x", 0, 0), (1.5, 0, 0), (True, 0, 0),
    (None, 0, 0), (1, -1, 0), (0, -1, 0), ("-5", 0, 0), (2, 3, 5),
])
def test_shift_and_offset_give_the_level(shift: Any, offset: int, level: int) -> None:
    """An integer or a string of one, plus the offset, never below 0; anything else is 0."""
    result = run(msg(shift), PolicyRules(routing_keys=("location", "slot"), shift_offset=offset))
    assert isinstance(result, PolicyUpdate) and result.level == level


def test_routing_key_joins_without_separator() -> None:
    """location,slot → "powerplantthree50" (ilagent's join), missing names skipped."""
    assert run(msg()).routing_key == "powerplantthree50"  # type: ignore[union-attr]
    result = run({"data": {"email": "a@b"}, "slot": "50"})
    assert isinstance(result, PolicyUpdate) and result.routing_key == "50"


def test_routing_key_names_may_be_dot_paths_but_a_top_level_name_wins() -> None:
    """"site.name" reads a nested field, unless a top-level key has exactly that name."""
    rules = PolicyRules(routing_keys=("site.name",))
    nested = {"data": {"email": "a@b"}, "site": {"name": "north"}}
    assert run(nested, rules).routing_key == "north"  # type: ignore[union-attr]
    both = {**nested, "site.name": "flat"}
    assert run(both, rules).routing_key == "flat"  # type: ignore[union-attr]


@pytest.mark.parametrize(("payload", "reason"), [
    (b"not json", "invalid_json"),
    ([1, 2], "invalid_message"),
    ({"location": "x"}, "no_email"),
    ({"data": {"email": ""}, "location": "x"}, "no_email"),
    ({"data": {"email": "a@b"}}, "no_routing_key"),
    ({"data": {"email": "a@b"}, "location": 7}, "no_routing_key"),
])
def test_messages_without_an_update(payload: Any, reason: str) -> None:
    """What ilagent 0.9 drops is a dead letter here, with the reason."""
    result = run(payload)
    assert isinstance(result, Dropped) and result.reason.value == reason


def test_the_shared_filter_applies() -> None:
    """--filter_key/--filter_val apply to policy messages as to events."""
    filters = MappingRules(filter_key="type", filter_val="SHIFT")
    assert isinstance(run(msg(type="SHIFT"), filters=filters), PolicyUpdate)
    dropped = run(msg(type="OTHER"), filters=filters)
    assert isinstance(dropped, Dropped) and dropped.filtered


def test_stored_form_round_trips() -> None:
    """A buffered update reads back as it was written."""
    update = PolicyUpdate("ann@example.com", "north50", 2)
    assert PolicyUpdate.from_json(update.to_json()) == update
    with pytest.raises(ValueError):
        PolicyUpdate.from_json('{"email": 1}')


@pytest.mark.parametrize(("rules", "payload", "warnings"), [
    (PolicyRules(routing_keys=("Location", "slot")), msg(),
     ["--policy_routing_keys 'Location' is not in the message"]),
    (RULES, {**msg(), "slot": 50},
     ["--policy_routing_keys 'slot' is not a non-empty string; skipped"]),
    (RULES, {"data": {"email": "ann@example.com"}, "location": "p", "slot": "5"},
     ["--map_key_shift 'data.shift' is not in the message; shift 0 assumed"]),
    (RULES, msg("late"), ["--map_key_shift 'data.shift' is not an integer; shift 0 assumed"]),
    (RULES, msg(2), []),
])
def test_a_field_that_does_not_fit_is_named_in_a_warning(
        rules: PolicyRules, payload: Any, warnings: list[str]) -> None:
    """Wrong-case or non-string routing-key fields and a missing or non-numeric shift still
    give 0.9's update, but say so (as a missing mapped path does for events)."""
    result = run(payload, rules)
    assert isinstance(result, PolicyUpdate) and list(result.warnings) == warnings
