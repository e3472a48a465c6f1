"""The acknowledgement window: PUBACKs in arrival order, only for finished messages (pure).

MQTT wants the PUBACKs of one connection in the order its PUBLISHes arrived, while lanes
finish out of order. Each QoS 1 message takes a place in the window; when it ends (delivered,
filtered, dead-lettered or, with ``--mqtt_buffer``, stored) it is marked done, and the
contiguous done prefix of the window is acknowledged — a watermark, as Kafka's offsets.

A message still in hand when the connection drops is not lost and not sent twice: the
broker keeps it in the persistent session and sends it again, with the same packet id, after
the reconnect. That resend is recognised (same packet id, topic and payload) and takes the
original's place in the new connection's window, so it is acknowledged once the original's
delivery ended instead of being delivered a second time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(eq=False)
class Unacked:
    """One received QoS 1 message waiting for its acknowledgement."""

    mid: int
    fingerprint: int  # of topic and payload, to recognise the broker's resend
    generation: int  # the connection it is to be acknowledged on
    done: bool = False


class AckWindow:
    """Received messages of the current connection, in arrival order, until acknowledged."""

    def __init__(self) -> None:
        self.generation = 0
        self._order: deque[Unacked] = deque()
        self._resends: dict[int, Unacked] = {}  # by packet id: in hand, from a lost connection

    def __len__(self) -> int:
        """Messages received and not yet acknowledged (resends awaited included)."""
        return len(self._order) + len(self._resends)

    def connected(self, *, session_present: bool) -> None:
        """A new connection: what was unacknowledged waits for the broker's resend (if the
        broker kept the session; without it nothing comes again and nothing is awaited)."""
        self.generation += 1
        left = list(self._order)
        self._order.clear()
        self._resends = {u.mid: u for u in left} if session_present else {}

    def arrived(self, mid: int, fingerprint: int) -> tuple[Unacked, bool]:
        """Place a received message; the flag is False for a resend of one already in hand."""
        original = self._resends.pop(mid, None)
        if original is not None and original.fingerprint == fingerprint:
            original.generation = self.generation
            self._order.append(original)
            return original, False
        unacked = Unacked(mid, fingerprint, self.generation)
        self._order.append(unacked)
        return unacked, True

    def finish(self, unacked: Unacked) -> list[Unacked]:
        """Mark a message done; the messages now to acknowledge, in order."""
        unacked.done = True
        if unacked.generation != self.generation:
            return []  # acknowledged when the broker sends it again
        return self.ready()

    def ready(self) -> list[Unacked]:
        """Take the contiguous done prefix of the window (to acknowledge, in order)."""
        out: list[Unacked] = []
        order = self._order
        while order and order[0].done:
            out.append(order.popleft())
        return out
