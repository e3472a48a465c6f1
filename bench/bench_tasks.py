"""What a new lane costs the delivery engine (issue 27): a new task, or an idle one woken.

When alert keys vary, nearly every event opens a new lane. The engine used to start a task for
each; now a task whose lane ran empty waits to run the next one. This measures the two patterns
alone, on the loop the daemon runs on (uvloop where installed) and on asyncio's own: 200,000
lanes of one trivial step each, submitted 24 at a time (the default ``--max_in_flight``), CPU
per lane (user + system, ``time.process_time``), best and worst of three.

    .venv/bin/python bench/bench_tasks.py

Prints its figures; bench/RESULTS.md quotes them in the cost section.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

LANES = 200_000
AT_ONCE = 24


async def new_task_per_lane() -> float:
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    async def lane() -> None:
        return None

    start = time.process_time()
    for n in range(LANES):
        task = loop.create_task(lane())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if n % AT_ONCE == AT_ONCE - 1:
            await asyncio.sleep(0)
    while tasks:
        await asyncio.sleep(0)
    return (time.process_time() - start) / LANES * 1e6


async def idle_task_woken() -> float:
    loop = asyncio.get_running_loop()
    idle: deque[asyncio.Future[int | None]] = deque()
    ran = 0

    async def runner() -> None:
        nonlocal ran
        while True:
            ran += 1
            waiter: asyncio.Future[int | None] = loop.create_future()
            idle.append(waiter)
            if await waiter is None:
                return

    runners = []
    start = time.process_time()
    for n in range(LANES):
        if idle:
            idle.pop().set_result(n)
        else:
            runners.append(loop.create_task(runner()))
        if n % AT_ONCE == AT_ONCE - 1:
            await asyncio.sleep(0)
    while ran < LANES:
        await asyncio.sleep(0)
    spent = (time.process_time() - start) / LANES * 1e6
    for waiter in idle:
        waiter.set_result(None)
    await asyncio.gather(*runners)
    return spent


def loops() -> list[tuple[str, Callable[[Coroutine[Any, Any, float]], float]]]:
    found: list[tuple[str, Callable[[Coroutine[Any, Any, float]], float]]] = []
    try:
        import uvloop

        found.append(("uvloop", uvloop.run))
    except ImportError:
        pass
    found.append(("asyncio", asyncio.run))
    return found


def main() -> int:
    for name, run in loops():
        for pattern in (new_task_per_lane, idle_task_woken):
            figures = sorted(run(pattern()) for _ in range(3))
            print(f"{name:8} {pattern.__name__:18} {figures[0]:.2f} to {figures[-1]:.2f} µs CPU "
                  "per lane")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
