"""Per-partition contiguous-offset tracking (pure).

Deliveries finish out of order; a partition may only be committed up to the first message that
is not finished yet, or a crash would skip it. :class:`OffsetTracker` keeps the pending offsets
of one partition and answers that watermark.
"""

from __future__ import annotations

import heapq


class OffsetTracker:
    """Offsets of one partition that were handed out and not yet finished."""

    def __init__(self) -> None:
        self._heap: list[int] = []
        self._pending: set[int] = set()
        self._next: int | None = None  # one past the highest offset seen

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, offset: int) -> None:
        """Record that ``offset`` was handed out and is now in progress."""
        self._pending.add(offset)
        heapq.heappush(self._heap, offset)
        if self._next is None or offset >= self._next:
            self._next = offset + 1

    def skip(self, offset: int) -> None:
        """Record an offset that was finished as soon as it was seen (filtered)."""
        if self._next is None or offset >= self._next:
            self._next = offset + 1

    def finish(self, offset: int) -> None:
        """Record that ``offset`` is finished (delivered, filtered or dead-lettered)."""
        self._pending.discard(offset)
        while self._heap and self._heap[0] not in self._pending:
            heapq.heappop(self._heap)

    def watermark(self) -> int | None:
        """The offset to commit: the lowest unfinished one, or one past the highest seen.

        Safe to call from the poll thread while the event loop finishes offsets: a heap that
        empties between the check and the read just means everything is finished.
        """
        try:
            return self._heap[0]
        except IndexError:
            return self._next
