"""The acknowledgement window: acks in arrival order, after the end, resends recognised.

The gap between losing a connection and the next CONNACK is its own step (``disconnected``),
as it is on the wire: messages finish during it, and the client refuses PUBACKs then.
"""

from __future__ import annotations

import random

from ilagent.mqtt.acks import AckWindow, Unacked


class Client:
    """Takes PUBACKs while ``up``, refuses them otherwise (paho's ``MQTT_ERR_NO_CONN``)."""

    def __init__(self) -> None:
        self.up = True
        self.sent: list[int] = []

    def ack(self, mid: int) -> bool:
        if self.up:
            self.sent.append(mid)
        return self.up


def arrive(window: AckWindow, mid: int, fingerprint: int | None = None, *,
           dup: bool = False) -> tuple[Unacked, bool]:
    return window.arrived(mid, mid * 11 if fingerprint is None else fingerprint, dup=dup,
                          received=float(mid))


def finish(window: AckWindow, client: Client, *unacked: Unacked) -> list[int]:
    for u in unacked:
        window.finish(u)
    return window.release(client.ack)


def connected_window(**kwargs: int) -> tuple[AckWindow, Client]:
    window = AckWindow(**kwargs)
    window.connected(session_present=False)
    return window, Client()


def test_acks_follow_arrival_order_not_finishing_order() -> None:
    """A later message that finished first waits until every earlier one finished."""
    window, client = connected_window()
    first, _ = arrive(window, 1)
    second, _ = arrive(window, 2)
    third, _ = arrive(window, 3)
    assert finish(window, client, third) == []
    assert finish(window, client, second) == []
    assert finish(window, client, first) == [1, 2, 3]
    assert len(window) == 0


def test_a_resend_after_reconnect_joins_the_original_in_hand() -> None:
    """A message still in hand when the connection dropped is not delivered again when the
    broker resends it: the resend takes its place and is acked once the original ended."""
    window, client = connected_window()
    in_hand, _ = arrive(window, 7)
    done, _ = arrive(window, 8)
    finish(window, client, done)  # waits behind 7
    window.disconnected()
    window.connected(session_present=True)
    resent, new = arrive(window, 7, dup=True)
    assert not new and resent is in_hand
    _again, new = arrive(window, 8, dup=True)
    assert not new
    assert window.release(client.ack) == []  # 7 still delivering
    assert finish(window, client, in_hand) == [7, 8]


def test_a_message_finished_during_the_gap_is_acked_on_its_resend_only() -> None:
    """Finished while disconnected: no PUBACK then; after the reconnect none either until the
    broker sent it again, then its resend is acked at once and not processed again."""
    window, client = connected_window()
    original, _ = arrive(window, 5)
    window.disconnected()
    client.up = False
    assert finish(window, client, original) == []
    assert len(window) == 1  # known until its resend
    window.connected(session_present=True)
    client.up = True
    assert window.release(client.ack) == []  # no late PUBACK for an id not sent again
    _resent, new = arrive(window, 5, dup=True)
    assert not new
    assert window.release(client.ack) == [5]
    assert client.sent == [5] and len(window) == 0


def test_a_refused_ack_keeps_the_message_until_its_resend() -> None:
    """The client refuses the PUBACK (no connection, before the window heard of the loss):
    the message stays, done, and is acked on its resend after the reconnect."""
    window, client = connected_window()
    first, _ = arrive(window, 1)
    second, _ = arrive(window, 2)
    client.up = False
    assert finish(window, client, first, second) == []
    assert len(window) == 2
    window.disconnected()
    window.connected(session_present=True)
    client.up = True
    assert window.release(client.ack) == []
    assert not arrive(window, 1, dup=True)[1]
    assert not arrive(window, 2, dup=True)[1]
    assert window.release(client.ack) == [1, 2]
    assert len(window) == 0


def test_an_accepted_ack_lost_with_the_connection_is_recognised_on_its_resend() -> None:
    """paho took the PUBACK but the connection died before writing it: the broker's DUP
    resend is acked on the new connection, not processed again."""
    window, client = connected_window()
    message, _ = arrive(window, 3)
    assert finish(window, client, message) == [3]
    assert len(window) == 0
    window.disconnected()
    window.connected(session_present=True)
    resent, new = arrive(window, 3, dup=True)
    assert not new and resent is message
    assert window.release(client.ack) == [3]
    assert client.sent == [3, 3]


def test_a_message_without_dup_is_always_new() -> None:
    """Packet ids are reused: DUP=0 with a remembered id is a new message, and the stale
    entry under that id is dropped (never acked for the new one)."""
    window, client = connected_window()
    old, _ = arrive(window, 4)
    window.disconnected()
    finish(window, client, old)
    window.connected(session_present=True)
    fresh, new = arrive(window, 4)  # same id, same content, no DUP: sent anew
    assert new and fresh is not old
    assert window.release(client.ack) == []  # the fresh one is not done
    assert len(window) == 1
    assert finish(window, client, fresh) == [4]
    assert len(window) == 0


def test_a_dup_with_other_content_is_new() -> None:
    """Only the same topic and payload make a resend: DUP alone does not."""
    window, _client = connected_window()
    arrive(window, 5)
    window.disconnected()
    window.connected(session_present=True)
    _, new = arrive(window, 5, 99, dup=True)
    assert new
    assert len(window) == 1


def test_an_id_the_broker_reused_forgets_the_earlier_ack() -> None:
    """Once the broker reused an id (DUP=0) its earlier PUBACK surely arrived: a later DUP
    with the old content after a reconnect is not mistaken for the old message."""
    window, client = connected_window()
    first, _ = arrive(window, 6)
    finish(window, client, first)
    reused, new = arrive(window, 6, 60)  # the broker moved on: id 6 is another message
    assert new
    finish(window, client, reused)
    window.disconnected()
    window.connected(session_present=True)
    _, new = arrive(window, 6, dup=True)  # the old fingerprint (6 * 11)
    assert new


def test_without_a_session_nothing_is_awaited() -> None:
    """A broker that lost the session sends nothing again: the window forgets the old ones."""
    window, client = connected_window()
    in_hand, _ = arrive(window, 1)
    acked, _ = arrive(window, 2)
    window.disconnected()
    finish(window, client, acked)
    window.connected(session_present=False)
    assert len(window) == 0 and window.remembered == 0
    assert finish(window, client, in_hand) == []
    _, new = arrive(window, 1, dup=True)
    assert new


def test_a_second_loss_before_the_resends_keeps_them_awaited() -> None:
    """The connection drops again before the broker resent: the next resumed session's
    resend is still recognised."""
    window, client = connected_window()
    message, _ = arrive(window, 9)
    window.disconnected()
    finish(window, client, message)
    window.connected(session_present=True)
    window.disconnected()
    window.connected(session_present=True)
    _, new = arrive(window, 9, dup=True)
    assert not new
    assert window.release(client.ack) == [9]


def test_memory_stays_bounded_over_many_reconnects() -> None:
    """Acks of one connection, messages finished in gaps and never resent, ids wrapping
    around: at each CONNACK the window holds at most twice ``remember`` (PUBACKs that may be
    lost, finished messages awaiting a resend), and three times ``remember`` plus what is in hand
    while connected."""
    remember = 20
    window, client = connected_window(remember=remember)
    rng = random.Random(7)
    mid = 0
    in_hand: list[Unacked] = []
    for _cycle in range(300):
        for _ in range(rng.randint(0, 60)):
            mid = mid % 65535 + 1
            unacked, _new = arrive(window, mid, dup=rng.random() < 0.2)
            in_hand.append(unacked)
        rng.shuffle(in_hand)
        for unacked in in_hand[: len(in_hand) * 3 // 4]:
            finish(window, client, unacked)
        window.disconnected()
        for unacked in in_hand[len(in_hand) * 3 // 4:]:  # finished in the gap
            finish(window, client, unacked)
        in_hand = []
        window.connected(session_present=rng.random() < 0.9)
        assert window.remembered <= 2 * remember, window.remembered
        for _ in range(rng.randint(0, 60)):
            mid = mid % 65535 + 1
            unacked, _new = arrive(window, mid)
            finish(window, client, unacked)
        assert window.remembered <= 3 * remember, window.remembered


def test_oldest_is_the_first_received_still_waiting_for_us() -> None:
    """The head-of-line watch sees the earliest message in hand, across a reconnect; one
    finished and awaiting its resend waits for the broker, not for us."""
    window, client = connected_window()
    assert window.oldest() is None
    first, _ = arrive(window, 1)
    second, _ = arrive(window, 2)
    assert window.oldest() is first
    window.disconnected()
    assert window.oldest() is first  # still in hand while disconnected
    finish(window, client, first)
    assert window.oldest() is second
    window.connected(session_present=True)
    arrive(window, 1, dup=True)
    assert window.release(client.ack) == [1]
    assert window.oldest() is second  # in hand, its resend not yet here
    finish(window, client, second)
    assert window.oldest() is None  # done: it waits for the broker's resend only
