"""librdkafka's statistics (``statistics.interval.ms``): consumer lag, and what readiness needs.

From each report: the lag of every partition (the ``ilagent_kafka_consumer_lag`` gauges),
whether the consumer is a steady member of its group, and how many brokers it is connected
to. librdkafka reports only what it can observe; a report that cannot be read changes nothing.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass

from ilagent.metrics import Metrics


@dataclass(frozen=True)
class GroupState:
    """The consumer's standing, as of the last statistics report."""

    member: bool  # joined the group and in a steady state (with or without partitions)
    brokers_up: int  # brokers with a live connection (bootstrap connections not counted)
    group_state: str = ""  # librdkafka's cgrp.state / join_state, for /ready
    topics: frozenset[str] = frozenset()  # topics the cluster reports partitions for


def read_stats(metrics: Metrics, raw: str) -> GroupState | None:
    """Set the lag gauges from a statistics report; return the group state it shows."""
    with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
        stats = json.loads(raw)
        for topic, info in stats.get("topics", {}).items():
            for partition, pstats in info.get("partitions", {}).items():
                lag = pstats.get("consumer_lag", -1)
                if partition != "-1" and lag >= 0:
                    metrics.consumer_lag.labels(topic, partition).set(lag)
        group = stats.get("cgrp", {})
        state, join = group.get("state", ""), group.get("join_state", "")
        brokers = sum(1 for b in stats.get("brokers", {}).values()
                      if b.get("state") == "UP" and b.get("nodeid", -1) >= 0)
        known = frozenset(t for t, info in stats.get("topics", {}).items()
                          if any(p != "-1" for p in info.get("partitions", {})))
        return GroupState(member=state == "up" and join == "steady", brokers_up=brokers,
                          group_state=f"{state}/{join}", topics=known)
    return None
