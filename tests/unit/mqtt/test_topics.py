"""MQTT topic filters: which are valid, what they match, and which kind a topic is."""

from __future__ import annotations

import pytest

from ilagent.mqtt.topics import TopicClassifier, filter_problem, matches, subscription


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


@pytest.mark.parametrize(("topic_filter", "topic", "expected"), [
    ("a/b", "a/b", True),
    ("a/b", "a/b/c", False),
    ("a/+", "a/b", True),
    ("a/+", "a/b/c", False),
    ("a/+/c", "a/b/c", True),
    ("a/#", "a", True),  # '#' includes the parent level
    ("a/#", "a/b/c", True),
    ("#", "a/b", True),
    ("#", "$SYS/x", False),  # $-topics only for filters that name them
    ("$SYS/#", "$SYS/x", True),
    ("+/b", "/b", True),  # an empty first level is a level
    ("a/b", "A/b", False),
])
def test_matching(topic_filter: str, topic: str, expected: bool) -> None:
    """MQTT's matching rules, wildcards included."""
    assert matches(topic_filter, topic) is expected


def test_heartbeat_beats_policy_beats_event() -> None:
    """ilagent 0.9's precedence: a heartbeat filter wins, then a policy filter, then events."""
    classify = TopicClassifier(event=["site/#"], heartbeat=["site/+/beat"],
                               policy=["site/shifts"])
    assert classify("site/boiler/beat") == "heartbeat"
    assert classify("site/shifts") == "policy"
    assert classify("site/boiler/alarm") == "event"
    assert classify("other/x") is None


def test_shared_subscription_prefix() -> None:
    """With a group the subscription is $share/<group>/<filter>."""
    assert subscription("a/#", "g1") == "$share/g1/a/#"
    assert subscription("a/#", None) == "a/#"
