"""``GET /trace``: the journal's story of one alert, or of the last while, as JSON.

``/trace?alert_key=K`` — every journaled event of that alert (keys compared as ilert compares
them), oldest first; ``&since=1h`` only those that ended in the last hour; ``/trace?since=1h``
alone lists every event of that while; ``&limit=N`` (default :data:`DEFAULT_LIMIT`, at most
:data:`MAX_LIMIT`) keeps the newest N. Guarded like every route but the probes
(:mod:`ilagent.web.access`). A daemon without a journal answers 404 ``NO_JOURNAL``.
"""

from __future__ import annotations

import time

from aiohttp import web

from ilagent.journal.entries import iso, parse_since
from ilagent.journal.writer import Journal
from ilagent.web.refusals import refusal

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000


class TraceRoute:
    """The ``/trace`` route over the daemon's journal (None: the daemon keeps none)."""

    def __init__(self, journal: Journal | None) -> None:
        self._journal = journal

    def add_routes(self, app: web.Application) -> None:
        """Register ``GET /trace``."""
        app.router.add_get("/trace", self.trace)

    async def trace(self, request: web.Request) -> web.Response:
        """Answer one trace request."""
        if self._journal is None:
            return refusal(404, "NO_JOURNAL", "this daemon keeps no journal: it runs with "
                           "--journal off, or without a spool file (see --journal)")
        alert_key = request.query.get("alert_key") or None
        since_text = request.query.get("since") or None
        if alert_key is None and since_text is None:
            return refusal(400, "MISSING_PARAMETER", "give alert_key=KEY, since=1h, or both")
        since = None
        if since_text is not None:
            try:
                since = time.time() - parse_since(since_text)
            except ValueError as exc:
                return refusal(400, "INVALID_PARAMETER", f"since: {exc}")
        limit_text = request.query.get("limit", str(DEFAULT_LIMIT))
        if not limit_text.isdigit() or not 0 < int(limit_text) <= MAX_LIMIT:
            return refusal(400, "INVALID_PARAMETER",
                           f"limit: {limit_text!r} must be a whole number from 1 to {MAX_LIMIT}")
        events = await self._journal.story(alert_key=alert_key, since=since,
                                           limit=int(limit_text))
        return web.json_response({"alertKey": alert_key,
                                  "since": iso(since) if since is not None else None,
                                  "events": events})
