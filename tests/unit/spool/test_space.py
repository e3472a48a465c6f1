"""The spool's cap: the bytes its rows hold, kept as a running total, and who may add more."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ilagent.spool.db import QueueDB
from ilagent.spool.space import DEFAULT_MAX_BYTES, row_bytes, spool_limit
from ilagent.spool.store import QueueStore

GIB, MIB = 1024**3, 1024**2
ROWS = [("il1apiAAAA1111", "/events", '{"summary": "door 7 open"}'),
        ("il1apiBBBB2222", "/v1/events/prometheus/il1apiBBBB2222", '{"summary": "Grüße ✓"}'),
        ("il1apiCCCC3333", "/events", '{"summary": "' + "x" * 5000 + '"}')]


@pytest.mark.parametrize(("configured", "stored", "free", "limit"), [
    (None, 0, 100 * GIB, GIB),
    (None, 0, GIB, GIB // 2),
    (None, 300 * MIB, 200 * MIB, 400 * MIB),
    (None, 0, 0, 0),
    (5 * GIB, 0, GIB, 5 * GIB),
    (1000, 5000, 100 * GIB, 1000),
])
def test_the_default_cap_is_1_gib_or_half_the_free_space(configured: int | None, stored: int,
                                                        free: int, limit: int) -> None:
    """Without --spool_max_bytes the spool may grow by at most half the free space found at
    start, up to 1 GiB in all; a value given is taken as it is."""
    assert DEFAULT_MAX_BYTES == GIB
    assert spool_limit(configured, stored=stored, free=free) == limit


def test_a_rows_bytes_are_what_the_file_counts(tmp_path: Path) -> None:
    """row_bytes (what the intake reserves) equals what the file sums up for the same rows,
    multi-byte characters included."""
    db = QueueDB(str(tmp_path / "q.db3"))
    with db.transaction():
        for key, path, event in ROWS:
            db.insert(integration_key=key, path=path, event=event, received_at=1.0)
    assert db.stored_bytes() == sum(row_bytes(*row) for row in ROWS)
    assert row_bytes("k", "/events", "é") == row_bytes("k", "/events", "e") + 1
    db.close()


async def test_the_store_keeps_a_running_total_of_its_rows(tmp_path: Path) -> None:
    """An enqueue adds its row, a delete takes it off, a move to the dead letters changes
    nothing, a dead letter added counts; reopened, the total starts from what the file holds."""
    path = str(tmp_path / "q.db3")
    store = QueueStore(path)
    await store.open()
    ids = [await store.enqueue(integration_key=k, path=p, event=e) for k, p, e in ROWS]
    sizes = [row_bytes(*row) for row in ROWS]
    assert (store.space.stored, store.space.reserved) == (sum(sizes), 0)
    assert await store.delete(ids[0])
    assert not await store.delete(ids[0])
    assert store.space.stored == sizes[1] + sizes[2]
    await store.dead_letter(ids[1], reason="rejected", status=400, detail="", attempts=1)
    assert store.space.stored == sizes[1] + sizes[2]
    await store.add_dead_letter(integration_key="", path="mqtt:plant/7", event="not json",
                                reason="invalid_json", detail="")
    total = sizes[1] + sizes[2] + row_bytes("", "mqtt:plant/7", "not json")
    assert store.space.stored == total
    await store.close()
    again = QueueStore(path)
    await again.open()
    assert again.space.stored == total
    await again.close()


async def test_an_outside_purge_is_recounted_when_the_daemon_acknowledges_it(
        tmp_path: Path) -> None:
    """`ilagent queue purge` deletes in another process: the daemon's total follows once the
    worker acknowledges the outside change, and a writer waiting for room gets in."""
    path = str(tmp_path / "q.db3")
    size = row_bytes(*ROWS[0])
    store = QueueStore(path, max_bytes=2 * size)
    await store.open()
    for _ in range(2):
        await store.enqueue(integration_key=ROWS[0][0], path=ROWS[0][1], event=ROWS[0][2])
    waiting = asyncio.ensure_future(store.space.wait(size))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    outside = QueueDB(path)
    with outside.transaction():
        outside.purge("queue")
    generation, _ = outside.generations()
    outside.close()
    await store.acknowledge(generation)
    await asyncio.wait_for(waiting, 5)
    assert (store.space.stored, store.space.reserved) == (0, size)
    await store.close()


async def test_a_full_spool_takes_nothing_until_a_delivery_frees_room(tmp_path: Path) -> None:
    """`take` reserves a row only while it fits under the cap, and the reservation becomes the
    stored row once committed; an empty spool takes even a row larger than the cap (else it
    could never be stored), and a delete makes room again."""
    size = row_bytes(*ROWS[0])
    store = QueueStore(str(tmp_path / "q.db3"), max_bytes=2 * size + size // 2)
    await store.open()
    assert store.space.limit == 2 * size + size // 2
    ids = []
    for _ in range(2):
        assert store.space.take(size)
        ids.append(await store.enqueue(integration_key=ROWS[0][0], path=ROWS[0][1],
                                       event=ROWS[0][2], reserved=True))
    assert (store.space.stored, store.space.reserved) == (2 * size, 0)
    assert not store.space.take(size)
    await store.delete(ids[0])
    assert store.space.take(size)
    await store.close()
    empty = QueueStore(str(tmp_path / "other.db3"), max_bytes=10)
    await empty.open()
    assert empty.space.take(size) and not empty.space.take(1)
    await empty.close()


async def test_writers_waiting_for_room_go_in_turn(tmp_path: Path) -> None:
    """A large row waiting for room is not overtaken by a smaller one that would fit: waiting
    writers are let in first come, first served, when a delivery frees room — and the intake's
    `take` says full meanwhile, so it cannot jump the line either."""
    small, large = row_bytes(*ROWS[0]), row_bytes(*ROWS[2])
    store = QueueStore(str(tmp_path / "q.db3"), max_bytes=large + small)
    await store.open()
    stored = await store.enqueue(integration_key=ROWS[2][0], path=ROWS[2][1], event=ROWS[2][2])
    order: list[str] = []

    async def writer(name: str, size: int) -> None:
        await store.space.wait(size)
        order.append(name)

    tasks = [asyncio.ensure_future(writer("large", large))]
    await asyncio.sleep(0.01)
    tasks.append(asyncio.ensure_future(writer("small", small)))
    await asyncio.sleep(0.05)
    assert order == [] and not store.space.take(1)
    await store.delete(stored)
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == ["large", "small"]
    assert (store.space.stored, store.space.reserved) == (0, large + small)
    await store.close()
