"""Which kind a topic carries: the classifier, Kafka's topic options and MQTT's filters."""

from __future__ import annotations

import pytest

from ilagent.errors import ConfigError
from ilagent.mapping.topics import Classifier, Kind, filter_matches, kafka_topics, mqtt_filters


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
    assert filter_matches(topic_filter, topic) is expected


def test_mqtt_heartbeat_beats_policy_beats_event() -> None:
    """MQTT keeps ilagent 0.9's precedence: a heartbeat filter wins, then a policy filter, then events."""
    classify = Classifier([(Kind.HEARTBEAT, mqtt_filters(["site/+/beat"])),
                           (Kind.POLICY, mqtt_filters(["site/shifts"])),
                           (Kind.EVENT, mqtt_filters(["site/#"]))])
    assert classify("site/boiler/beat") == "heartbeat"
    assert classify("site/shifts") == "policy"
    assert classify("site/boiler/alarm") == "event"
    assert classify("other/x") is None


def test_kafka_events_first_then_heartbeats_then_policy_updates() -> None:
    """Kafka asks events first: a topic named by two options is an event topic."""
    classify = Classifier([(Kind.EVENT, kafka_topics(["alarms", "^plant\\..*"])),
                           (Kind.HEARTBEAT, kafka_topics(["beats", "alarms"])),
                           (Kind.POLICY, kafka_topics(["shifts"]))])
    assert classify("alarms") is Kind.EVENT
    assert classify("plant.line3") is Kind.EVENT
    assert classify("beats") is Kind.HEARTBEAT
    assert classify("shifts") is Kind.POLICY
    assert classify("other") is None


def test_a_kafka_pattern_that_is_not_a_regex_is_a_config_error() -> None:
    """``-e '^(['`` is refused with the option's value named."""
    with pytest.raises(ConfigError, match="is not a regular expression"):
        kafka_topics(["^(["])


def test_the_classifier_remembers_a_bounded_number_of_topics() -> None:
    """Topics with ids in them never grow the classifier's memory without bound."""
    from ilagent.mapping import topics

    classify = Classifier([(Kind.EVENT, mqtt_filters(["#"]))])
    for n in range(topics.MAX_KNOWN + 50):
        assert classify(f"device/{n}") is Kind.EVENT
    assert len(classify._known) == topics.MAX_KNOWN
