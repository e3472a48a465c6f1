"""Which queued rows the spool worker holds in memory: a window with caps per key and per lane.

At most ``size`` rows are loaded, at most ``per_key`` of one integration key and ``per_lane`` of
one lane (key + alert key), so one busy, paced or failing key can never fill the window and
starve the others: the worker keeps reading past it. A key whose rows were passed over is
*behind*: its later rows are passed over too (so a lane never loses its order) until a
catch-up read, which looks only at that key's rows, has loaded everything up to where the
forward read stands. Pure bookkeeping, no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable

DEFAULT_SIZE = 1000


def default_caps(size: int) -> tuple[int, int]:
    """Per-key and per-lane caps for a window of ``size`` rows (a quarter, a twentieth)."""
    return max(1, size // 4), max(1, size // 20)


class Window:
    """The loaded rows and their counts per key and per lane."""

    def __init__(self, size: int = DEFAULT_SIZE, *, per_key: int | None = None,
                 per_lane: int | None = None) -> None:
        self.size = max(1, size)
        key_cap, lane_cap = default_caps(self.size)
        self.per_key = per_key or key_cap
        self.per_lane = per_lane or lane_cap
        self._rows: dict[int, tuple[str, Hashable | None]] = {}
        self._keys: Counter[str] = Counter()
        self._lanes: Counter[Hashable] = Counter()
        self.behind: dict[str, int] = {}  # key → the first of its ids passed over

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, row_id: int) -> bool:
        return row_id in self._rows

    @property
    def full(self) -> bool:
        """No room for any row."""
        return len(self._rows) >= self.size

    def fits(self, key: str, lane: Hashable | None) -> bool:
        """Room for one more row of this key and lane."""
        return (not self.full and self._keys[key] < self.per_key
                and (lane is None or self._lanes[lane] < self.per_lane))

    def add(self, row_id: int, key: str, lane: Hashable | None) -> None:
        """A row was loaded."""
        self._rows[row_id] = (key, lane)
        self._keys[key] += 1
        if lane is not None:
            self._lanes[lane] += 1

    def remove(self, row_id: int) -> str | None:
        """A row was settled; return its key when that key is behind and now has room to
        catch up (half its cap free, or half its lane's), else None."""
        entry = self._rows.pop(row_id, None)
        if entry is None:
            return None
        key, lane = entry
        self._keys[key] -= 1
        if not self._keys[key]:
            del self._keys[key]
        room = self._keys[key] <= self.per_key // 2
        if lane is not None:
            self._lanes[lane] -= 1
            if not self._lanes[lane]:
                del self._lanes[lane]
            room = room or self._lanes[lane] <= self.per_lane // 2
        return key if key in self.behind and room else None

    def pass_over(self, key: str, row_id: int) -> None:
        """A row of ``key`` was not loaded: the key is behind from that row on."""
        self.behind[key] = min(self.behind.get(key, row_id), row_id)
