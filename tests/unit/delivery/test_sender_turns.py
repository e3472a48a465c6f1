"""Jobs of one key take their turns at admission in order; a job cancelled while it waits
(a revoke, a shutdown) neither loses the turn for the jobs behind it nor leaves state behind."""

from __future__ import annotations

import asyncio

from ilagent.delivery.gate import Gate
from ilagent.delivery.pacing import Pacer
from ilagent.delivery.sender import Sender
from ilagent.ilert import IlertClient
from ilagent.metrics import Metrics


async def job(turns: Sender, order: list[int], number: int) -> None:
    """A job that waits for its turn, notes that it had it, and passes it on."""
    await turns._take_turn("key")
    order.append(number)
    turns._pass_turn("key")


def sender() -> Sender:
    return Sender(client=IlertClient(), gate=Gate(rate_limit_delay=1.0),
                  pacer=Pacer(per_key=0, total=0), metrics=Metrics(), max_in_flight=1,
                  withdrawn=lambda job: False)


async def test_turns_pass_in_order_past_a_job_cancelled_while_it_waited() -> None:
    turns, order = sender(), list[int]()

    await turns._take_turn("key")  # a first job holds the turn
    waiting = [asyncio.create_task(job(turns, order, number)) for number in range(3)]
    await asyncio.sleep(0)
    waiting[1].cancel()  # gives up while it waits
    await asyncio.sleep(0)
    turns._pass_turn("key")
    await asyncio.gather(*waiting, return_exceptions=True)
    assert order == [0, 2]
    assert turns._turns == {}


async def test_a_turn_that_came_with_a_cancellation_goes_on_to_the_next_job() -> None:
    turns, order = sender(), list[int]()

    await turns._take_turn("key")
    first, second = (asyncio.create_task(job(turns, order, 1)),
                     asyncio.create_task(job(turns, order, 2)))
    await asyncio.sleep(0)
    turns._pass_turn("key")  # the turn is the first waiter's ...
    first.cancel()  # ... which is cancelled before it could run
    await asyncio.gather(first, second, return_exceptions=True)
    assert order == [2]
    assert turns._turns == {}


async def test_a_job_cancelled_just_before_its_turn_passes_is_skipped() -> None:
    """Cancelled, and before it could leave the queue the turn passes: the turn skips it and
    goes on, and the cancelled job leaves without an error of its own."""
    turns, order = sender(), list[int]()

    await turns._take_turn("key")
    first, second = (asyncio.create_task(job(turns, order, 1)),
                     asyncio.create_task(job(turns, order, 2)))
    await asyncio.sleep(0)
    first.cancel()  # its turn's future is cancelled at once ...
    turns._pass_turn("key")  # ... and the turn passes before the job runs again
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert order == [2]
    assert turns._turns == {}
