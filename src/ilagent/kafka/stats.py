"""librdkafka's statistics (``statistics.interval.ms``) turned into the consumer-lag gauges."""

from __future__ import annotations

import contextlib
import json

from ilagent.metrics import Metrics


def record_lag(metrics: Metrics, raw: str) -> None:
    """Set ``ilagent_consumer_lag`` for every partition the statistics report a lag for."""
    with contextlib.suppress(ValueError, KeyError, TypeError):
        stats = json.loads(raw)
        for topic, info in stats.get("topics", {}).items():
            for partition, pstats in info.get("partitions", {}).items():
                lag = pstats.get("consumer_lag", -1)
                if partition != "-1" and lag >= 0:
                    metrics.consumer_lag.labels(topic, partition).set(lag)
