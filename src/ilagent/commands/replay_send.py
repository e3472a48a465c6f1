"""``replay --to URL`` / ``--send``: the candidate's events posted one after another, in the
order replayed, so each alert's story arrives in order.

A 429 waits for its ``Retry-After`` (else :data:`RATE_LIMIT_WAIT`) and tries again; a network
error or 5xx is tried :data:`ATTEMPTS` times in all, :data:`BACKOFF` s apart; a rejected event
(4xx) is counted and the rest go on. After :data:`GIVE_UP` events in a row that could not be
delivered the rest are not tried: the destination is down or wrong.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ilagent.events import encode_event
from ilagent.ilert import IlertClient, Outcome
from ilagent.logs import mask
from ilagent.mapping.replaying import Sent

ATTEMPTS = 3
BACKOFF = 1.0
RATE_LIMIT_WAIT = 10.0
GIVE_UP = 5
TIMEOUT = 10.0


@dataclass
class Sending:
    """What became of the events sent."""

    url: str
    events: int
    delivered: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # HTTP status or network_error
    not_tried: int = 0
    last_failure: str = ""

    @property
    def complete(self) -> bool:
        """True when every event was delivered."""
        return self.delivered == self.events

    def words(self) -> str:
        """One line for the text report."""
        failed = ", ".join(f"{status} {n} times" for status, n in sorted(self.failed.items()))
        return (f"sent to {self.url}: {self.delivered} of {self.events} events delivered"
                + (f"; failed: {failed}" if failed else "")
                + (f"; {self.not_tried} not tried" if self.not_tried else "")
                + (f" (last: {self.last_failure})" if self.last_failure else ""))

    def as_json(self) -> dict[str, Any]:
        return {"url": self.url, "events": self.events, "delivered": self.delivered,
                "failed": dict(self.failed), "notTried": self.not_tried}


async def send_all(events: Sequence[Sent], *, api_url: str, timeout: float = TIMEOUT,
                   backoff: float = BACKOFF) -> Sending:
    """Post each event to ``api_url`` + its path, in order (see the module docstring)."""
    sending = Sending(url=mask(api_url), events=len(events))
    in_a_row = 0
    async with IlertClient(api_url=api_url, timeout=timeout,
                           wrong_url_then="The event is counted as failed") as client:
        for index, sent in enumerate(events):
            if in_a_row >= GIVE_UP:
                sending.not_tried = len(events) - index
                break
            body = encode_event(sent.event)
            attempt = 0
            while True:
                result = await client.post_event(sent.path, body, route=sent.route)
                if result.outcome is Outcome.RATE_LIMITED:
                    await asyncio.sleep(result.retry_after or RATE_LIMIT_WAIT)
                    continue
                attempt += 1
                if result.outcome is Outcome.RETRY and attempt < ATTEMPTS:
                    await asyncio.sleep(backoff)
                    continue
                break
            if result.outcome is Outcome.DELIVERED:
                sending.delivered += 1
                in_a_row = 0
            else:
                sending.failed[result.status_label] += 1
                sending.last_failure = mask(f"{result.status_label} {result.detail}".strip())
                in_a_row += 1
    return sending
