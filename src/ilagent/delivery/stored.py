"""What a stored record becomes: a delivery, or its end (the words of every spool's reader).

:func:`ilagent.spool.rows.read_row` decides, for a SQLite row or a Kafka spool record alike;
the owner of the record (the spool worker, the Kafka bridge) turns a :class:`Delivery` into a
job on its lane and an :class:`Ending` into a dead letter (or, without a reason, nothing).
Pure data.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from ilagent.mapping.policy import PolicyUpdate


@dataclass(frozen=True)
class Delivery:
    """What to send for a row: the fields of its delivery job."""

    lane: Hashable | None
    integration_key: str
    path: str = ""
    body: bytes | None = None  # None (and no policy): a heartbeat ping
    policy: PolicyUpdate | None = None
    pages: bool = False  # an ALERT event (the one kind --max_event_age keeps from going late)


@dataclass(frozen=True)
class Ending:
    """A row that ends without a request: a dead letter with ``reason``, or (``reason`` None)
    a message its mapping now filters."""

    reason: str | None
    detail: str = ""
