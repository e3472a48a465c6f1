"""The acknowledgement window: acks in arrival order, after the end, resends recognised."""

from __future__ import annotations

from ilagent.mqtt.acks import AckWindow


def mids(window: AckWindow, finished: list[object]) -> list[int]:
    return [u.mid for u in finished]  # type: ignore[attr-defined]


def test_acks_follow_arrival_order_not_finishing_order() -> None:
    """A later message that finished first waits until every earlier one finished."""
    window = AckWindow()
    window.connected(session_present=False)
    first, _ = window.arrived(1, 11)
    second, _ = window.arrived(2, 22)
    third, _ = window.arrived(3, 33)
    assert window.finish(third) == []
    assert window.finish(second) == []
    assert mids(window, window.finish(first)) == [1, 2, 3]
    assert len(window) == 0


def test_a_resend_after_reconnect_joins_the_original() -> None:
    """A message still in hand when the connection dropped is not delivered again when the
    broker resends it: the resend takes its place and is acked once the original ended."""
    window = AckWindow()
    window.connected(session_present=False)
    in_hand, _ = window.arrived(7, 77)
    done, _ = window.arrived(8, 88)
    window.finish(done)  # waits behind 7
    window.connected(session_present=True)
    resent, new = window.arrived(7, 77)
    assert not new and resent is in_hand
    _again, new = window.arrived(8, 88)
    assert not new
    assert mids(window, window.ready()) == []  # 7 still delivering
    assert mids(window, window.finish(in_hand)) == [7, 8]


def test_an_original_that_finished_before_its_resend_is_acked_on_arrival() -> None:
    """Finished after the connection dropped: nothing to ack then; the resend is acked at once."""
    window = AckWindow()
    window.connected(session_present=False)
    original, _ = window.arrived(5, 55)
    window.connected(session_present=True)
    assert window.finish(original) == []
    _resent, new = window.arrived(5, 55)
    assert not new
    assert mids(window, window.ready()) == [5]


def test_same_packet_id_with_other_content_is_a_new_message() -> None:
    """Packet ids are reused: only the same topic and payload make a resend."""
    window = AckWindow()
    window.connected(session_present=False)
    window.arrived(5, 55)
    window.connected(session_present=True)
    _, new = window.arrived(5, 99)
    assert new


def test_without_a_session_nothing_is_awaited() -> None:
    """A broker that lost the session sends nothing again: the window forgets the old ones."""
    window = AckWindow()
    window.connected(session_present=False)
    old, _ = window.arrived(1, 1)
    window.connected(session_present=False)
    assert len(window) == 0
    assert window.finish(old) == []
    _, new = window.arrived(1, 1)
    assert new
