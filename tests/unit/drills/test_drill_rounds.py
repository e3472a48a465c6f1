"""The drill state machine: each source's drill passes through sent, consumed, mapped and
delivered, or fails at the first stage it missed; times come from an injected clock."""

from __future__ import annotations

import pytest

from ilagent.drills.rounds import Round, Stage, Verdict


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


def passing(drill: Round, clock: Clock, source: str, events: int = 1) -> None:
    clock.tick(0.5)
    drill.sent(source, "t[0]")
    clock.tick(1.0)
    assert drill.consumed(source)
    drill.mapped(source, events, f"{events} event(s)")
    for _ in range(events):
        clock.tick(2.0)
        drill.delivered(source)


def test_a_drill_that_went_all_the_way_passes_with_each_stage_timed() -> None:
    """Sent at 0.5, consumed and mapped at 1.5, delivered at 3.5: passed, 3.5 s end to end."""
    clock = Clock()
    drill = Round("d1", ["kafka"], clock=clock)
    passing(drill, clock, "kafka")
    trace = drill.traces["kafka"]
    assert trace.times == {Stage.SENT: 0.5, Stage.CONSUMED: 1.5, Stage.MAPPED: 1.5,
                           Stage.DELIVERED: 3.5}
    assert trace.where == "t[0]" and trace.seconds == 3.5
    assert drill.done and drill.verdict is Verdict.PASSED


def test_several_drill_events_pass_only_when_the_last_is_delivered() -> None:
    """Two routes took the message: the first delivery does not end the drill, the second does."""
    clock = Clock()
    drill = Round("d1", ["mqtt"], clock=clock)
    assert drill.consumed("mqtt")
    drill.mapped("mqtt", 2)
    drill.delivered("mqtt")
    assert not drill.done
    clock.tick(1.0)
    drill.delivered("mqtt")
    assert drill.done and drill.traces["mqtt"].times[Stage.DELIVERED] == 1.0


@pytest.mark.parametrize(("steps", "stage", "why"), [
    ((), Stage.SENT, "not sent before the deadline"),
    (("sent",), Stage.CONSUMED, "not received back before the deadline"),
    (("consumed", "mapped"), Stage.DELIVERED, "not delivered before the deadline"),
    (("consumed", "mapped", "retrying"), Stage.DELIVERED,
     "still retrying at the deadline (last answer: 503 down)"),
])
def test_at_the_deadline_an_open_drill_fails_at_the_first_stage_it_missed(
        steps: tuple[str, ...], stage: Stage, why: str) -> None:
    """Whatever a source's drill did not reach when the deadline comes is where it failed."""
    clock = Clock()
    drill = Round("d1", ["kafka"], clock=clock)
    for step in steps:
        {"sent": lambda: drill.sent("kafka", "t[0]"),
         "consumed": lambda: drill.consumed("kafka"),
         "mapped": lambda: drill.mapped("kafka", 1),
         "retrying": lambda: drill.retrying("kafka", "503 down")}[step]()
    clock.tick(12.0)
    drill.expire()
    trace = drill.traces["kafka"]
    assert (trace.failed, trace.why, trace.failed_at) == (stage, why, 12.0)
    assert drill.verdict is Verdict.FAILED


def test_a_message_the_mapping_made_no_event_of_fails_at_mapped() -> None:
    """Filtered (no event) is a failure at mapped, with the mapping's reason."""
    drill = Round("d1", ["kafka"], clock=Clock())
    drill.consumed("kafka")
    drill.mapped("kafka", 0, "filtered: type is not ALARM")
    trace = drill.traces["kafka"]
    assert (trace.failed, trace.why) == (Stage.MAPPED, "filtered: type is not ALARM")


def test_a_rejected_drill_event_fails_at_delivered_at_once() -> None:
    """ilert's 400 does not wait for the deadline."""
    drill = Round("d1", ["http"], clock=Clock())
    drill.consumed("http")
    drill.mapped("http", 1)
    drill.delivery_failed("http", "rejected: 400 bad key")
    assert drill.done and drill.traces["http"].failed is Stage.DELIVERED


def test_a_copy_or_a_late_message_is_not_taken_and_changes_nothing() -> None:
    """The second copy of a drill message is refused (the source finishes it unsent); after the
    drill ended, a delivery or a failure changes nothing."""
    clock = Clock()
    drill = Round("d1", ["kafka", "mqtt"], clock=clock)
    passing(drill, clock, "kafka")
    assert not drill.consumed("kafka")
    drill.delivery_failed("kafka", "too late")
    assert drill.traces["kafka"].verdict is Verdict.PASSED
    drill.expire()
    assert not drill.consumed("mqtt")
    assert drill.traces["mqtt"].failed is Stage.SENT


def test_a_send_error_after_the_message_came_back_is_no_failure() -> None:
    """A producer that timed out while its message did arrive: the arrival counts."""
    drill = Round("d1", ["kafka"], clock=Clock())
    assert drill.consumed("kafka")
    drill.send_failed("kafka", "not acknowledged in time")
    assert drill.traces["kafka"].failed is None


@pytest.mark.parametrize(("outcomes", "verdict"), [
    (("pass", "pass"), Verdict.PASSED),
    (("pass", "skip"), Verdict.PASSED),
    (("skip", "skip"), Verdict.SKIPPED),
    (("pass", "fail"), Verdict.FAILED),
    (("skip", "fail"), Verdict.FAILED),
])
def test_the_verdict_of_a_drill(outcomes: tuple[str, str], verdict: Verdict) -> None:
    """Passed needs one pass and no failure; all skipped proves nothing; any failure fails it."""
    clock = Clock()
    drill = Round("d1", ["a", "b"], clock=clock)
    for source, what in zip(("a", "b"), outcomes, strict=True):
        if what == "pass":
            passing(drill, clock, source)
        elif what == "skip":
            drill.skipped(source, "this member owns no partition of t")
        else:
            drill.send_failed(source, "not connected")
    assert drill.done and drill.verdict is verdict


def test_an_open_drill_is_not_done_and_counts_as_failed() -> None:
    """Before the deadline an unfinished source keeps the drill open."""
    clock = Clock()
    drill = Round("d1", ["a", "b"], clock=clock)
    passing(drill, clock, "a")
    assert not drill.done and drill.verdict is Verdict.FAILED
    assert not drill.over("b") and drill.over("a") and drill.over("elsewhere")
