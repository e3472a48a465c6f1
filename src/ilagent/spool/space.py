"""The spool's cap (``--spool_max_bytes``): the bytes its rows hold, and who may add more.

A row's bytes are those of its integration key, path and event (UTF-8) plus
:data:`ROW_OVERHEAD` for its other columns, as :func:`row_bytes` counts them and
:data:`ROW_BYTES_SQL` sums them up in the file; rows of ``queue`` and ``dead_letters`` both count
(dead letters take disk as well: purge them to make room). The total is counted from the file
once at open and then kept as a running figure by the store: writes add what they reserved
once committed, deletes of delivered rows take theirs off, and after an outside change
(``ilagent queue purge``) the file is counted again.

Without a value the cap is 1 GiB, or, when less, what the spool holds at start plus half the
free space of its file system then: an intake must not fill the disk it shares. A value given
is taken as it is.

:class:`SpoolSpace` admits writes: the intake :meth:`~SpoolSpace.take`\\ s room or answers 503,
MQTT's buffer :meth:`~SpoolSpace.wait`\\ s for it (its acknowledgement held meanwhile), first
come first served, woken when deliveries free room — never by polling. An empty spool takes
even a row larger than the cap, which could never be stored otherwise.
"""

from __future__ import annotations

import asyncio
from collections import deque

DEFAULT_MAX_BYTES = 1024**3
ROW_OVERHEAD = 64  # received_at, attempts, next attempt, id, kind, and SQLite's own bytes
ROW_BYTES_SQL = (f"LENGTH(CAST(integration_key AS BLOB)) + LENGTH(CAST(path AS BLOB)) + "
                 f"LENGTH(CAST(event AS BLOB)) + {ROW_OVERHEAD}")


def row_bytes(integration_key: str, path: str, event: str) -> int:
    """What a row with these values counts towards the cap (as :data:`ROW_BYTES_SQL`)."""
    return (ROW_OVERHEAD + _utf8(integration_key) + _utf8(path) + _utf8(event))


def _utf8(text: str) -> int:
    # surrogatepass: an MQTT payload kept as received may hold what UTF-8 cannot
    return len(text.encode("utf-8", "surrogatepass"))


def spool_limit(configured: int | None, *, stored: int, free: int) -> int:
    """The cap: ``configured`` when given, else 1 GiB or ``stored`` plus half of ``free``
    (the free bytes of the file system at start), whichever is less."""
    if configured is not None:
        return configured
    return min(DEFAULT_MAX_BYTES, stored + free // 2)


class SpoolSpace:
    """The bytes the spool holds (``stored``), those promised to writes still running
    (``reserved``), and the cap (``limit``; None until the file is open: no cap)."""

    def __init__(self) -> None:
        self.stored = 0
        self.reserved = 0
        self.limit: int | None = None
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def used(self) -> int:
        """Stored and reserved bytes."""
        return self.stored + self.reserved

    @property
    def waiting(self) -> int:
        """Writes waiting for room."""
        return len(self._waiting)

    def take(self, nbytes: int) -> bool:
        """Reserve ``nbytes`` now if they fit and nobody waits before; False: the spool is
        full."""
        if self._waiting or not self._fits(nbytes):
            return False
        self.reserved += nbytes
        return True

    async def wait(self, nbytes: int) -> None:
        """Wait in turn until ``nbytes`` fit, then reserve them."""
        if self.take(nbytes):
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (nbytes, waiter)
        self._waiting.append(entry)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # let in, but gone before it wrote
                self.reserved -= nbytes
            elif entry in self._waiting:
                self._waiting.remove(entry)
            self._admit()
            raise

    def reserve(self, nbytes: int) -> None:
        """Reserve ``nbytes`` whatever the cap (a write that was not asked to wait)."""
        self.reserved += nbytes

    def settle(self, *, released: int, stored: int) -> None:
        """Writes ended: ``released`` reserved bytes are let go, the file holds ``stored``
        bytes more (fewer when negative); waiting writes that fit now are let in."""
        self.reserved -= released
        self.stored += stored
        self._admit()

    def recounted(self, stored: int) -> None:
        """The file was counted anew (after an outside change): it holds ``stored`` bytes."""
        self.stored = stored
        self._admit()

    def _fits(self, nbytes: int) -> bool:
        return self.limit is None or self.used == 0 or self.used + nbytes <= self.limit

    def _admit(self) -> None:
        while self._waiting and self._fits(self._waiting[0][0]):
            nbytes, waiter = self._waiting.popleft()
            if not waiter.done():
                self.reserved += nbytes
                waiter.set_result(None)
