"""The gate: a 429 blocks its key, a failing key sends one request at a time, the circuit."""

from __future__ import annotations

import pytest

from ilagent.delivery.gate import CIRCUIT_OPEN, RATE_LIMITED, SINGLE_FLIGHT, Admission, Gate
from ilagent.ilert import Outcome


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gate(clock: Clock) -> Gate:
    return Gate(rate_limit_delay=10.0, failures_to_open=5, probe_interval=5.0, max_block=60.0,
                clock=clock)


def send(gate: Gate, key: str, outcome: Outcome, *, lane: object = "lane",
         retry_after: float | None = None) -> float:
    """Admit one request for ``key`` (it must be admitted) and settle it."""
    admission = gate.admit(key)
    assert admission.ok, admission
    return gate.settle(key, lane, outcome, admission=admission, retry_after=retry_after)


def healthy(gate: Gate, key: str) -> None:
    send(gate, key, Outcome.DELIVERED)


def test_a_429_blocks_the_key_and_grows_while_it_lasts(gate: Gate, clock: Clock) -> None:
    """No Retry-After: the key waits 10 s, then 20 s, 40 s, capped at 60 s; others go on."""
    healthy(gate, "k")
    blocks = []
    for n in range(4):
        blocks.append(send(gate, "k", Outcome.RATE_LIMITED))
        refused = gate.admit("k")
        assert (refused.ok, refused.reason, refused.until) == (False, RATE_LIMITED,
                                                                clock.now + blocks[-1])
        assert gate.admit(f"other{n}").ok
        clock.now += blocks[-1]
    assert blocks == [10.0, 20.0, 40.0, 60.0]
    healthy(gate, "k")
    assert send(gate, "k", Outcome.RATE_LIMITED) == 10.0  # a success starts over


def test_retry_after_is_the_block(gate: Gate, clock: Clock) -> None:
    """A Retry-After header sets the block, even below the default delay."""
    assert send(gate, "k", Outcome.RATE_LIMITED, retry_after=2.0) == 2.0
    assert gate.blocked_until("k") == clock.now + 2.0


def test_one_request_in_flight_until_the_key_succeeds(gate: Gate) -> None:
    """A key with no success yet, or failing, has one request in flight; after a success, many."""
    first = gate.admit("k")
    assert first.ok and gate.admit("k") == Admission(False, SINGLE_FLIGHT)
    gate.settle("k", "a", Outcome.DELIVERED, admission=first)
    assert all(gate.admit("k").ok for _ in range(10))


def test_a_failure_brings_single_flight_back(gate: Gate) -> None:
    """After a 503 the key is back to one request at a time."""
    healthy(gate, "k")
    send(gate, "k", Outcome.RETRY)
    assert gate.admit("k").ok and not gate.admit("k").ok


def test_the_circuit_opens_after_failures_across_lanes(gate: Gate, clock: Clock) -> None:
    """Five failures in a row from two lanes open it: only one probe per interval goes."""
    moves: list[bool] = []
    gate.listeners.append(moves.append)
    for n in range(5):
        send(gate, f"k{n % 2}", Outcome.RETRY, lane=n % 2)
    assert gate.open and moves == [True] and gate.epoch == 1
    refused = gate.admit("k9")
    assert (refused.reason, refused.until) == (CIRCUIT_OPEN, clock.now + 5.0)
    clock.now += 5.0
    probe = gate.admit("k9")
    assert probe.ok and probe.probe
    assert gate.admit("k8") == Admission(False, CIRCUIT_OPEN)  # the probe is in flight
    gate.settle("k9", "x", Outcome.RETRY, admission=probe)  # a failed probe: wait again
    assert gate.admit("k8").until == clock.now + 5.0
    clock.now += 5.0
    probe = gate.admit("k8")
    gate.settle("k8", "y", Outcome.DELIVERED, admission=probe)
    assert not gate.open and moves == [True, False] and gate.epoch == 2
    assert gate.admit("k7").ok


def test_failures_of_one_lane_do_not_open_the_circuit(gate: Gate) -> None:
    """One alert failing over and over is that alert's problem, not an outage."""
    for _ in range(20):
        send(gate, "k", Outcome.RETRY, lane="one")
    assert not gate.open


def test_an_answer_between_failures_keeps_it_closed(gate: Gate) -> None:
    """The failures must come in a row: a success or a rejection in between resets the count."""
    for n in range(4):
        send(gate, "a", Outcome.RETRY, lane=n)
    send(gate, "b", Outcome.REJECTED, lane="other")
    for n in range(4):
        send(gate, "a", Outcome.RETRY, lane=n)
    assert not gate.open


def test_429s_never_open_the_circuit(gate: Gate, clock: Clock) -> None:
    """Rate limits are per key: many 429s from many keys leave the circuit closed."""
    for n in range(10):
        send(gate, f"k{n}", Outcome.RATE_LIMITED, lane=n)
    assert not gate.open


def test_a_cancelled_probe_frees_the_probe(gate: Gate, clock: Clock) -> None:
    """A probe that pacing held back is handed back, so the next request can probe."""
    for n in range(5):
        send(gate, f"k{n}", Outcome.RETRY, lane=n)
    clock.now += 5.0
    probe = gate.admit("a")
    gate.cancel("a", probe)
    assert gate.admit("b").probe
