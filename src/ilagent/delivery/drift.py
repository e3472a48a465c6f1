"""Mapping drift made visible: what each route took, passed over and could not fill in.

A producer that renames a field does not break anything loudly: the alert key goes missing and
every event becomes an alert of its own that never resolves. :class:`RouteWatch` counts, per
route, the messages it took (``ilagent_route_matched_total``) and passed over
(``ilagent_messages_filtered_total``), each mapped field a message did not have
(``ilagent_mapping_missing_total{route,field}``) and each failed template
(``ilagent_template_errors_total``), and logs one WARNING per route and field the first time in
each :data:`~ilagent.logs.SUMMARY_INTERVAL`, with how many more there were since the last one.
The alert rule ``IlagentAlertKeyMissing`` (``deploy/prometheus/alerts.yml``) watches the count.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ilagent.logs import EACH, SUMMARY_INTERVAL
from ilagent.mapping.messages import Mapped
from ilagent.mapping.reading import Event, Fanout
from ilagent.metrics import Metrics

logger = logging.getLogger(__name__)

MAX_NOTED = 1000  # (route, field) pairs whose last warning is remembered


class RouteWatch:
    """Counts and reports what the routes of one source made of its messages."""

    def __init__(self, metrics: Metrics, source: str, *,
                 clock: Callable[[], float] = time.monotonic,
                 interval: float = SUMMARY_INTERVAL) -> None:
        self._metrics = metrics
        self._source = source
        self._clock = clock
        self._interval = interval
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}
        self._matched: dict[str, Any] = {}  # route_matched children by route

    def fanout(self, reading: Fanout) -> None:
        """A message read through the routes: who took it, who passed it over."""
        for route in reading.passed:
            self._metrics.filtered.labels(self._source, route).inc()
        if not reading.parts and not reading.passed:  # no route reads its topic
            self._metrics.filtered.labels(self._source, "").inc()
        for part in reading.parts:
            if isinstance(part, Event):
                self.mapped(part.mapped)
            else:
                self._metrics.route_matched.labels(self._source, part.route).inc()

    def mapped(self, mapped: Mapped) -> None:
        """One route's event: taken, and what it lacked."""
        route = mapped.route
        matched = self._matched.get(route)
        if matched is None:  # labels() hashes and locks each time: looked up once per route
            matched = self._matched[route] = self._metrics.route_matched.labels(self._source,
                                                                                route)
        matched.inc()
        for field in mapped.missing_fields:
            self._metrics.mapping_missing.labels(route, field).inc()
            self._warn(route, field, "the message has no value for %s (mapping drift? a "
                                     "producer may have renamed the field)")
        for field in mapped.template_errors:
            self._metrics.template_errors.labels(route, field).inc()
            self._warn(route, f"{field} template", "the %s failed; sent with a fallback text")

    def _warn(self, route: str, field: str, what: str) -> None:
        noted = (route, field)
        now = self._clock()
        last = self._last.get(noted)
        if last is not None and now - last < self._interval:
            self._held[noted] = self._held.get(noted, 0) + 1
            return
        if last is None and len(self._last) >= MAX_NOTED:
            self._last.pop(next(iter(self._last)))
        held = self._held.pop(noted, 0)
        self._last[noted] = now
        more = f" (and {held} more in the last {self._interval:.0f} s)" if held else ""
        logger.warning("route %s: " + what + "%s", route, field, more, extra=EACH)
