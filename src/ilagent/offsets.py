"""Per-partition offset tracking (pure): the commit position and what is finished above it.

Deliveries finish out of order; a partition may only be committed up to the first message that
is not finished yet, or a crash would skip it. :class:`OffsetTracker` keeps the offsets of one
partition that are in progress and answers that position (the watermark) — and, for the commit
metadata of :mod:`ilagent.offsetmap`, which offsets above it are finished already, so that a
restart or the partition's next owner need not send them again.

Memory follows the offsets *in progress* only: every offset between the watermark and the
highest one seen that is not in progress is finished (delivered, filtered, dead-lettered) or
never existed (compaction, transaction markers), and skipping an offset that does not exist is
harmless. A million finished offsets behind one stuck offset cost one entry.

Offsets a previous owner had finished (read back from the committed metadata, see
:meth:`OffsetTracker.restored`) are finished without being sent again; until they are read
again they are still listed as finished above the watermark, so that a commit made meanwhile
does not forget them.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Iterable

Ranges = list[tuple[int, int]]  # [start, end) pairs, sorted, disjoint


class OffsetTracker:
    """Offsets of one partition that were handed out and not yet finished."""

    def __init__(self, restored: Iterable[tuple[int, int]] = ()) -> None:
        # offset -> when it was handed out (monotonic); offsets arrive in increasing order, so
        # insertion order is offset order and the first key is the oldest one in progress
        self._pending: OrderedDict[int, float] = OrderedDict()
        self._next: int | None = None  # one past the highest offset seen
        self._restored: Ranges = merged(restored)
        self._restored_starts = [start for start, _ in self._restored]

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, offset: int, now: float = 0.0) -> None:
        """Record that ``offset`` was handed out (at monotonic time ``now``) and is in progress."""
        pending = self._pending
        if pending and offset < next(reversed(pending)):  # never in practice: keep the order
            items = sorted([*pending.items(), (offset, now)])
            pending.clear()
            pending.update(items)
        else:
            pending[offset] = now
        if self._next is None or offset >= self._next:
            self._next = offset + 1

    def skip(self, offset: int) -> None:
        """Record an offset that was finished as soon as it was seen (filtered)."""
        if self._next is None or offset >= self._next:
            self._next = offset + 1

    def finish(self, offset: int) -> None:
        """Record that ``offset`` is finished (delivered or dead-lettered)."""
        self._pending.pop(offset, None)

    def restored(self, offset: int) -> bool:
        """True when the committed metadata lists ``offset`` as finished by an earlier owner."""
        if not self._restored or offset >= self._restored[-1][1]:
            return False
        index = bisect.bisect_right(self._restored_starts, offset) - 1
        return index >= 0 and offset < self._restored[index][1]

    def oldest(self) -> tuple[int, float] | None:
        """The oldest offset in progress and when it was handed out; None when none is."""
        for offset, since in self._pending.items():
            return offset, since
        return None

    def watermark(self) -> int | None:
        """The offset to commit: the lowest unfinished one, or one past the highest seen.

        Offsets listed as finished by the metadata the partition was assigned with count as
        finished even before they are read again. None while nothing was seen.
        """
        for offset in self._pending:
            return offset
        if self._next is None:
            return None
        return self._past_restored(self._next)

    def finished_above(self) -> Ranges:
        """The finished offsets above the watermark, as ``[start, end)`` ranges."""
        ranges: Ranges = []
        previous: int | None = None
        for offset in self._pending:
            if previous is not None and offset > previous + 1:
                ranges.append((previous + 1, offset))
            previous = offset
        if previous is not None and self._next is not None and self._next > previous + 1:
            ranges.append((previous + 1, self._next))
        if self._restored:
            floor = self._next if self._next is not None else 0
            ranges.extend((max(start, floor), end) for start, end in self._restored
                          if end > floor)
            ranges = merged(ranges)
        watermark = self.watermark()
        return [(start, end) for start, end in ranges if watermark is None or end > watermark]

    def _past_restored(self, offset: int) -> int:
        """``offset``, moved past any restored ranges that start at it."""
        for start, end in self._restored:
            if start <= offset < end:
                offset = end
            elif start > offset:
                break
        return offset


def merged(ranges: Iterable[tuple[int, int]]) -> Ranges:
    """``[start, end)`` ranges sorted, with empty ones dropped and touching ones joined."""
    out: Ranges = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out
