"""The mapping flags of the example in ilert's Kafka guide, shared by the tests that use them."""

from __future__ import annotations

from ilagent.config import MappingRules


def guide_rules(event_key: str) -> MappingRules:
    """`--event_key KEY --map_key_alert_key mCode --map_key_summary comment --map_key_etype state
    --map_val_etype_alert SET --map_val_etype_accept ACK --map_val_etype_resolve CLR
    --filter_key type --filter_val ALARM`."""
    return MappingRules(
        event_key=event_key,
        map_key_alert_key="mCode",
        map_key_summary="comment",
        map_key_etype="state",
        map_val_etype_alert="SET",
        map_val_etype_accept="ACK",
        map_val_etype_resolve="CLR",
        filter_key="type",
        filter_val="ALARM",
    )
