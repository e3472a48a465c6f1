"""What a paused partition reports: the message that holds it back (its lane in the log, its key
in the ``held_back`` gauge), and the gauge removed again when it resumes or is revoked."""

from __future__ import annotations

import contextlib
import logging

from ilagent.kafka.partitions import PartitionState
from ilagent.metrics import Metrics

logger = logging.getLogger("ilagent.kafka.bridge")  # the bridge's words, as before the move


def report_pause(metrics: Metrics, state: PartitionState, paused: bool, count: int) -> None:
    """Name the message that holds a paused partition back (its lane: log; key: metric)."""
    if not paused:
        logger.info("resumed %s[%d]", *state.key)
        clear_held_back(metrics, state)
        return
    head = state.tracker.oldest()
    oldest = head[0] if head is not None else None
    job = state.waiting.get(oldest) if oldest is not None else None
    key, lane = (job.shown_key, job.lane) if job is not None else ("", None)
    logger.warning("paused %s[%d]: %d messages wait behind offset %s of lane %s (key %s); "
                   "raise --max_buffered to buffer more", state.topic, state.partition,
                   count, oldest, lane, key)
    metrics.held_back.labels(state.topic, str(state.partition), key).set(count)
    state.held_by = key


def clear_held_back(metrics: Metrics, state: PartitionState) -> None:
    """Remove the held-back gauge a pause set (its key, not the keys waiting now: the
    message that held the partition back has usually finished by the time it resumes)."""
    if state.held_by is not None:
        with contextlib.suppress(KeyError):
            metrics.held_back.remove(state.topic, str(state.partition), state.held_by)
        state.held_by = None
