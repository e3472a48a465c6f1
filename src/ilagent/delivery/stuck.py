"""Nothing stuck in silence: the oldest unfinished message of every source position, watched.

Each source reports its *heads* — per Kafka partition, per MQTT connection, for the spool — the
oldest message it received and has not finished (delivered, filtered or dead-lettered). One
message that cannot go holds back its partition's commit position (and, with MQTT, its
acknowledgement) while the rest flows; that is by design, but it must be seen:

* ``ilagent_oldest_unfinished_seconds{source,topic,partition}`` is the age of each head (0 when
  nothing waits), refreshed every few seconds;
* a head older than ``--stuck_after`` (300 s) is logged at WARNING — one summarised line per
  check naming the source, the position, the alert key, the masked integration key and ilert's
  last answer, repeated for the same head only when its age has doubled;
* ``/health?details`` lists the stuck heads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ilagent.config import DEFAULT_STUCK_AFTER
from ilagent.delivery.engine import Job
from ilagent.metrics import Metrics

logger = logging.getLogger(__name__)

CHECK_INTERVAL = 5.0
SHOWN = 3  # heads named in one log line; the rest are counted


@dataclass(frozen=True)
class Head:
    """The oldest unfinished message of one source position (a partition, a connection)."""

    source: str
    topic: str = ""  # the Kafka topic ("" where the source has none)
    partition: str = ""  # the Kafka partition ("" where the source has none)
    where: str = ""  # the message's position for people: topic[partition]@offset, queue#id
    since: float | None = None  # monotonic time it was received; None: nothing waits
    job: Job | None = None  # its delivery, when it is with the delivery engine


def describe(job: Job | None) -> dict[str, str]:
    """What a stuck report says of a job: its alert key, masked key and ilert's last answer."""
    if job is None:
        return {"alert_key": "", "key": "", "last_answer": "none yet"}
    lane = job.lane
    alert_key = ""
    if isinstance(lane, tuple) and len(lane) >= 2:
        if lane[0] == "alert" and len(lane) == 3:
            alert_key = str(lane[2])
        elif lane[0] == "key":
            value = lane[1]
            alert_key = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    result = job.last_result
    answer = (f"{result.status_label} {result.detail}".strip()[:200] if result is not None
              else "none yet")
    return {"alert_key": alert_key, "key": job.shown_key, "last_answer": answer}


class StuckWatch:
    """Gauges every source's heads and reports the ones older than ``stuck_after``."""

    def __init__(self, *, metrics: Metrics, sources: list[Callable[[], Iterable[Head]]],
                 stuck_after: float = DEFAULT_STUCK_AFTER,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._metrics = metrics
        self._sources = sources
        self._stuck_after = stuck_after
        self._clock = clock
        self._series: set[tuple[str, str, str]] = set()
        self._reported: dict[tuple[str, str, str, str], float] = {}  # head → age at which it is named again
        self.stuck: list[dict[str, Any]] = []  # the last check's stuck heads, for /health

    def check(self) -> list[dict[str, Any]]:
        """Refresh the gauges, log what newly got stuck (or doubled its wait); the stuck heads."""
        now = self._clock()
        series: set[tuple[str, str, str]] = set()
        stuck: list[tuple[float, Head]] = []
        for source in self._sources:
            for head in source():
                labels = (head.source, head.topic, head.partition)
                age = max(0.0, now - head.since) if head.since is not None else 0.0
                self._metrics.oldest_unfinished.labels(*labels).set(round(age, 1))
                series.add(labels)
                if head.since is not None and age >= self._stuck_after:
                    stuck.append((age, head))
        for gone in self._series - series:
            self._metrics.oldest_unfinished.remove(*gone)
        self._series = series
        stuck.sort(key=lambda item: -item[0])
        self._report(stuck)
        self.stuck = [{"source": head.source, "where": head.where, "age_seconds": round(age),
                       **describe(head.job)} for age, head in stuck]
        return self.stuck

    def _report(self, stuck: list[tuple[float, Head]]) -> None:
        """One WARNING for the heads that got stuck (or doubled their wait) since last time."""
        due: list[tuple[float, Head]] = []
        reported: dict[tuple[str, str, str, str], float] = {}
        for age, head in stuck:
            identity = (head.source, head.topic, head.partition, head.where)
            next_age = self._reported.get(identity, 0.0)
            if age >= next_age:
                due.append((age, head))
                next_age = max(age * 2, self._stuck_after * 2)
            reported[identity] = next_age
        for source, _topic, _partition, where in self._reported.keys() - reported.keys():
            logger.info("no longer stuck: %s %s", source, where)
        self._reported = reported
        if not due:
            return
        parts = []
        for age, head in due[:SHOWN]:
            info = describe(head.job)
            alert = f"alert key {info['alert_key']!r}, " if info["alert_key"] else ""
            parts.append(f"{head.source} {head.where} for {age:.0f} s ({alert}key "
                         f"{info['key'] or '-'}, last answer: {info['last_answer']})")
        more = f"; and {len(due) - SHOWN} more" if len(due) > SHOWN else ""
        logger.warning("%d message(s) unfinished for more than %.0f s, holding back what comes "
                       "after them: %s%s", len(due), self._stuck_after, "; ".join(parts), more)
