"""The acknowledgement window: PUBACKs in arrival order, only for finished messages (pure).

MQTT wants the PUBACKs of one connection in the order its PUBLISHes arrived, while lanes
finish out of order. Each QoS 1 message takes a place in the window; when it ends (delivered,
filtered, dead-lettered or, with ``--mqtt_buffer``, stored) it is marked done, and the
contiguous done prefix of the window is acknowledged — a watermark, as Kafka's offsets. A
message leaves the window only once the client accepted its PUBACK; a refused one (no
connection) stays, done, and is treated as below.

**Across a reconnect.** Between the loss of a connection and the next CONNACK the window is
*disconnected*: nothing is acknowledged. What the lost connection left unacknowledged is
*awaited*: messages still in hand, messages that finished meanwhile, and the latest PUBACKs the
client accepted, which may have been lost with the connection unwritten. With a resumed
session the broker sends each again with its packet id and the DUP flag set; a DUP message
that matches an awaited one (packet id, and a fingerprint of topic and payload) takes its place
in the new connection's window and is acknowledged there, in order, once the original ended
— never delivered a second time. A PUBACK is never sent on a new connection for a packet id
the broker did not send again on it: ids are reused, it could acknowledge another message.

A message without DUP is always new: the broker reuses a packet id only once it is done with
the message that had it, so anything remembered under that id is stale and forgotten. Without
a resumed session nothing comes again, and everything awaited is forgotten.

**Bounded memory.** The window holds what the broker has in flight. Of the PUBACKs of the
current connection only the last ``remember`` are kept: the client writes them in order, so
those a lost connection can take with it are the latest, and no more of them than the broker
keeps in flight (its receive maximum, ``remember``). Awaited messages are keyed by packet id,
and those already finished are capped at ``remember`` too, oldest forgotten first; forgetting
one too early can only make a resend count as new (delivered twice, at least once).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ilagent.delivery.engine import Job

MAX_PACKET_ID = 65535  # MQTT's packet ids are 16 bits: no more can be in flight at once


@dataclass(eq=False)
class Unacked:
    """One received QoS 1 message waiting for its acknowledgement."""

    mid: int
    fingerprint: int  # of topic and payload, to recognise the broker's resend
    received: float  # monotonic, when it first arrived (a resend keeps its original's)
    done: bool = False
    job: Job | None = None  # the delivery carrying it, while the delivery engine has it


class AckWindow:
    """Received messages of the current connection, in arrival order, until acknowledged."""

    def __init__(self, *, remember: int = MAX_PACKET_ID) -> None:
        self._remember = max(1, min(remember, MAX_PACKET_ID))
        self._up = False  # between a CONNACK and the loss of that connection
        self._order: deque[Unacked] = deque()
        # acknowledged on the current connection, latest last: they may be lost with it
        self._recent: OrderedDict[int, Unacked] = OrderedDict()
        # by packet id, oldest first: left unacknowledged by a lost connection
        self._awaited: OrderedDict[int, Unacked] = OrderedDict()
        # by packet id, oldest first: acknowledged on a lost connection, maybe never written
        self._maybe_lost: OrderedDict[int, Unacked] = OrderedDict()

    def __len__(self) -> int:
        """Messages received and never acknowledged (resends awaited included)."""
        return len(self._order) + len(self._awaited)

    @property
    def remembered(self) -> int:
        """Every entry the window holds, acknowledged ones included (to check the bound)."""
        return len(self) + len(self._recent) + len(self._maybe_lost)

    def disconnected(self) -> None:
        """The connection is lost: until the next CONNACK nothing can be acknowledged, and
        what it left unacknowledged (or acknowledged just before) may be sent again."""
        self._up = False
        for unacked in self._order:
            self._awaited.pop(unacked.mid, None)  # a new arrival replaced any older one
            self._awaited[unacked.mid] = unacked
        self._order.clear()
        for mid, unacked in self._recent.items():
            self._maybe_lost.pop(mid, None)
            self._maybe_lost[mid] = unacked
        self._recent.clear()
        self._forget_oldest()

    def connected(self, *, session_present: bool) -> None:
        """A new connection (its CONNACK): without the broker's session nothing comes again,
        and nothing is awaited any more."""
        self.disconnected()  # again: trims what finished during the gap
        self._up = True
        if not session_present:
            self._awaited.clear()
            self._maybe_lost.clear()

    def arrived(self, mid: int, fingerprint: int, *, dup: bool,
                received: float) -> tuple[Unacked, bool]:
        """Place a received message; the flag is False for a resend of one already known."""
        self._recent.pop(mid, None)  # the broker reuses the id: it has that PUBACK
        awaited = self._awaited.pop(mid, None)
        lost = self._maybe_lost.pop(mid, None)
        original = awaited if awaited is not None else lost
        if dup and original is not None and original.fingerprint == fingerprint:
            self._order.append(original)
            return original, False
        unacked = Unacked(mid, fingerprint, received)
        self._order.append(unacked)
        return unacked, True

    def finish(self, unacked: Unacked) -> None:
        """Mark a message done (it is acknowledged by :meth:`release`, or on its resend)."""
        unacked.done = True
        unacked.job = None

    def release(self, ack: Callable[[int], bool]) -> list[int]:
        """Acknowledge the contiguous done prefix of the window in order through ``ack`` (a
        packet id; True once the client accepted it); stops at the first refusal, which stays
        for its resend. Returns the packet ids acknowledged."""
        if not self._up:
            return []
        acknowledged: list[int] = []
        order, recent = self._order, self._recent
        while order and order[0].done:
            head = order[0]
            if not ack(head.mid):
                break
            order.popleft()
            acknowledged.append(head.mid)
            recent.pop(head.mid, None)
            recent[head.mid] = head
            if len(recent) > self._remember:
                recent.popitem(last=False)
        return acknowledged

    def oldest(self) -> Unacked | None:
        """The unacknowledged message received first that still waits for us: in this
        connection's window, or in hand from a lost one (a finished one awaiting the broker's
        resend waits for the broker, not for us)."""
        waiting: Iterator[Unacked] = chain(
            self._order, (u for u in self._awaited.values() if not u.done))
        return min(waiting, key=lambda u: u.received, default=None)

    def _forget_oldest(self) -> None:
        """Keep the memory of a lost connection bounded (see the module docstring)."""
        while len(self._maybe_lost) > self._remember:
            self._maybe_lost.popitem(last=False)
        finished = sum(1 for u in self._awaited.values() if u.done)
        if finished <= self._remember:
            return
        for mid, unacked in list(self._awaited.items()):
            if unacked.done:
                del self._awaited[mid]
                finished -= 1
                if finished <= self._remember:
                    return
