"""MQTT topic filters: which are valid, and the shared subscription."""

from __future__ import annotations

import pytest

from ilagent.mqtt.topics import filter_problem, subscription


@pytest.mark.parametrize(("topic", "problem"), [
    ("ilert/events", None),
    ("ilert/+/alarms", None),
    ("ilert/#", None),
    ("#", None),
    ("+", None),
    ("", "an MQTT topic cannot be empty"),
    ("a/#/b", "'#' must be a whole level and the last one"),
    ("a/b#", "'#' must be a whole level and the last one"),
    ("a/b+/c", "'+' must be a whole level"),
    ("a\x00b", "an MQTT topic cannot contain NUL"),
    ("$share/g/t", "give the plain topic and --mqtt_shared_group instead of $share/…"),
])
def test_filter_problems(topic: str, problem: str | None) -> None:
    """A filter is refused at startup with the rule it breaks."""
    assert filter_problem(topic) == problem


def test_shared_subscription_prefix() -> None:
    """With a group the subscription is $share/<group>/<filter>."""
    assert subscription("a/#", "g1") == "$share/g1/a/#"
    assert subscription("a/#", None) == "a/#"
