"""librdkafka's statistics (``statistics.interval.ms``): consumer lag, and what readiness needs.

From each report: the lag of every partition (the ``ilagent_kafka_consumer_lag`` gauges),
whether the consumer is a steady member of its group, and how many brokers it is connected
to. librdkafka reports only what it can observe; a report that cannot be read changes nothing.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Sized
from dataclasses import dataclass
from typing import Any, Protocol

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


class Polling(Protocol):
    """What readiness reads of the poll thread (:class:`~ilagent.kafka.consumer.PollThread`)."""

    @property
    def group(self) -> GroupState | None: ...
    @property
    def missing_topics(self) -> Iterable[str]: ...  # subscribed, not (yet) in the cluster
    @property
    def exited(self) -> bool: ...
    @property
    def assigned(self) -> Sized: ...
    @property
    def last_error(self) -> str: ...


def readiness(poller: Polling | None) -> dict[str, Any] | None:
    """None while the consumer is a steady group member with a live broker connection (with
    or without partitions: replicas beyond the partition count are ready too), else why not,
    for ``/ready``."""
    group = poller.group if poller is not None else None
    missing = sorted(poller.missing_topics) if poller is not None else []
    if poller is not None and not poller.exited and group is not None and group.member \
            and group.brokers_up > 0 and not missing:
        return None
    return {
        "missing_topics": missing,
        "member": bool(group and group.member),
        "group_state": group.group_state if group else "joining",
        "brokers_up": group.brokers_up if group else 0,
        "assigned_partitions": len(poller.assigned) if poller is not None else 0,
        "worker_exited": poller is not None and poller.exited,
        "error": poller.last_error if poller is not None else "",
    }
