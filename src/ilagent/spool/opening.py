"""Opening the queue file at the daemon's start, and saying what it took over from ilagent 0.9
(:mod:`ilagent.spool.legacy`)."""

from __future__ import annotations

import logging
import sqlite3

from ilagent.errors import ResourceError
from ilagent.spool.legacy import Convert
from ilagent.spool.store import QueueStore

logger = logging.getLogger("ilagent.daemon")  # start-up lines, as they always read


async def open_queue(store: QueueStore, *, convert_mqtt: Convert | None) -> None:
    """Open the file (``ResourceError`` when it cannot be), take over ilagent 0.9's queued
    events, and its buffered MQTT messages when ``convert_mqtt`` (this daemon runs MQTT)."""
    try:
        taken = await store.open()
    except sqlite3.Error as exc:
        raise ResourceError(f"cannot open the queue file {store.path}: {exc}") from None
    logger.info("queue file %s open", store.path)
    if taken.queued or taken.refused:
        logger.warning("took over %d event(s) ilagent 0.9 had queued in %s (%d refused, "
                       "kept as dead letters)", taken.queued + taken.refused,
                       store.path, taken.refused)
    if taken.mqtt_waiting and convert_mqtt is not None:
        moved = await store.take_over_mqtt(convert_mqtt)
        logger.warning("took over %d MQTT message(s) ilagent 0.9 had buffered in %s "
                       "(%d queued, %d kept as dead letters, the rest filtered or stale "
                       "heartbeats)", taken.mqtt_waiting, store.path, moved.queued,
                       moved.refused)
    elif taken.mqtt_waiting:
        logger.warning("%d MQTT message(s) of ilagent 0.9 wait in mqtt_queue of %s; run the "
                       "daemon with --mqtt_host, its MQTT options and --mqtt_buffer on this "
                       "file to take them over", taken.mqtt_waiting, store.path)
