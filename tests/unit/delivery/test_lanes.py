"""Ordering lanes: one alert is one lane on every source."""

from __future__ import annotations

from ilagent.delivery.lanes import event_lane, heartbeat_lane, message_lane, policy_lane
from ilagent.mapping.messages import Mapped
from ilagent.mapping.policy import PolicyUpdate


def mapped(key: str, alert_key: str | None) -> Mapped:
    event = {"integrationKey": key, "eventType": "ALERT", "summary": "s"}
    if alert_key is not None:
        event["alertKey"] = alert_key
    return Mapped(event=event, path=f"/v1/events/kafka/{key}")


def test_lane_is_the_alert_trimmed_and_lower_cased() -> None:
    """Events of one alert share a lane whatever the case and padding of the alert key."""
    assert event_lane("k", {"alertKey": " Door-7 "}) == event_lane("k", {"alertKey": "door-7"})
    assert event_lane("k", {"alertKey": "a"}) != event_lane("other", {"alertKey": "a"})
    assert event_lane("k", {"summary": "no alert key"}) is None


def test_a_message_and_a_queued_event_of_one_alert_share_the_lane() -> None:
    """Kafka and the spool compute the same lane for the same alert."""
    assert message_lane(mapped("k", " Door-7"), b"m1") == event_lane("k", {"alertKey": "door-7"})


def test_without_an_alert_key_the_message_key_orders() -> None:
    """No alert key: events of one message key keep their order; with neither, no lane."""
    assert message_lane(mapped("k", None), b"m1") == message_lane(mapped("k", ""), b"m1")
    assert message_lane(mapped("k", None), b"m1") != message_lane(mapped("k", None), b"m2")
    assert message_lane(mapped("k", None), None) is None


def test_heartbeats_of_one_key_share_a_lane_apart_from_events() -> None:
    """Pings of one key are one lane, distinct from any alert's."""
    assert heartbeat_lane("k") == heartbeat_lane("k")
    assert heartbeat_lane("k") != event_lane("k", {"alertKey": "k"})


def test_policy_updates_of_one_level_share_a_lane_whatever_the_routing_key() -> None:
    """Two routing keys may resolve to one policy: updates of one level number are one lane, so
    they reach ilert in offset order; other levels are other lanes, apart from events."""
    first = PolicyUpdate(email="a@x", routing_key="plant350", level=1)
    other_key = PolicyUpdate(email="b@x", routing_key="nope,plant350", level=1)
    assert policy_lane(first) == policy_lane(other_key)
    assert policy_lane(first) != policy_lane(PolicyUpdate(email="a@x", routing_key="plant350",
                                                          level=2))
    assert policy_lane(first) not in (heartbeat_lane("policy"), event_lane("policy", {"alertKey": "1"}))


def test_without_an_alert_key_two_alert_sources_never_share_a_lane() -> None:
    """Two routes take messages of one Kafka key: one source's failing key must not hold the
    other's events back; within one source the message key still orders them."""
    from ilagent.delivery.lanes import message_lane
    from ilagent.mapping.messages import Mapped

    def mapped(key: str) -> Mapped:
        return Mapped({"integrationKey": key, "eventType": "ALERT", "summary": "s"}, "/p")

    assert message_lane(mapped("il1apiA0000"), b"k") != message_lane(mapped("il1apiB0000"), b"k")
    assert message_lane(mapped("il1apiA0000"), b"k") == message_lane(mapped("il1apiA0000"), b"k")
    assert message_lane(mapped("il1apiA0000"), None) is None
