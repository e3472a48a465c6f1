"""The durable queue on a real SQLite file: tables, moves between them, group commit, locking."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from ilagent.spool.db import QueueDB
from ilagent.spool.store import QueueStore


def add(db: QueueDB, n: int, key: str = "il1apiAAAA1111") -> list[int]:
    with db.transaction():
        return [
            db.insert(
                integration_key=key, path="/events", event=f'{{"n": {i}}}', received_at=1000.0 + i
            )
            for i in range(n)
        ]


@pytest.fixture
def db(tmp_path: Path) -> QueueDB:
    return QueueDB(str(tmp_path / "q.db3"))


def test_file_runs_in_wal_mode_with_full_sync(db: QueueDB) -> None:
    """The queue file is opened in WAL journal mode with synchronous=FULL (2)."""
    assert db.pragma("journal_mode") == "wal"
    assert db.pragma("synchronous") == 2


def test_rows_survive_reopening_and_page_in_id_order(tmp_path: Path) -> None:
    """Inserted rows are still there after reopening, paged oldest first after a cursor."""
    path = str(tmp_path / "q.db3")
    first = QueueDB(path)
    ids = add(first, 5)
    first.close()
    again = QueueDB(path)
    assert ids == sorted(ids)
    page = again.page(after=ids[1], limit=2)
    assert [row.id for row in page] == ids[2:4]
    assert page[0].event == '{"n": 2}' and page[0].attempts == 0
    assert again.stats().depth == 5 and again.stats().oldest_received_at == 1000.0


def test_insert_many_returns_the_ids_the_rows_got(db: QueueDB) -> None:
    """A multi-row insert (several chunks) reports exactly the ids SQLite gave each row."""
    add(db, 3)
    rows = [("k", "/events", f'{{"m": {i}}}', 1.0, "event") for i in range(450)]
    with db.transaction():
        ids = db.insert_many(rows)
    stored = {row.id: row.event for row in db.page(after=0, limit=1000)}
    assert [stored[i] for i in ids] == [row[2] for row in rows]


def test_ids_are_never_reused_after_the_queue_empties(db: QueueDB) -> None:
    """After the newest row is dead-lettered, the next id is still higher (no clash)."""
    (only,) = add(db, 1)
    with db.transaction():
        db.dead_letter(only, reason="rejected", status=400, detail="bad", attempts=1, now=1.0)
    (following,) = add(db, 1)
    assert following > only


def test_dead_letter_keeps_reason_status_detail_and_retry_moves_it_back(db: QueueDB) -> None:
    """A dead letter records why; retry puts it back in the queue under the id it had."""
    ids = add(db, 3)
    with db.transaction():
        db.record_attempt(ids[0], attempts=7, next_attempt_at=50.0, last_error="503 down")
        assert db.dead_letter(
            ids[0], reason="retries_exhausted", status=503, detail="down", attempts=7, now=60.0
        )
    (letter,) = db.dead_letters(limit=10)
    assert (letter.id, letter.reason, letter.status, letter.detail, letter.attempts) == (
        ids[0],
        "retries_exhausted",
        503,
        "down",
        7,
    )
    assert [row.id for row in db.page(after=0, limit=10)] == ids[1:]
    with db.transaction():
        assert db.retry([ids[0]]) == 1
    assert [row.id for row in db.page(after=0, limit=10)] == ids
    assert db.dead_letters(limit=10) == []
    assert db.page(after=0, limit=1)[0].event == '{"n": 0}'


def test_record_attempt_persists_the_retry_state(db: QueueDB) -> None:
    """Attempts, next attempt time and last error of a row are stored."""
    (row_id,) = add(db, 1)
    with db.transaction():
        db.record_attempt(row_id, attempts=3, next_attempt_at=99.5, last_error="network_error")
    row = db.page(after=0, limit=1)[0]
    assert (row.attempts, row.next_attempt_at, row.last_error) == (3, 99.5, "network_error")


def test_purge_empties_one_table_only(db: QueueDB) -> None:
    """Purging dead letters leaves the queue alone, and the other way round."""
    ids = add(db, 3)
    with db.transaction():
        db.dead_letter(ids[0], reason="rejected", status=400, detail="", attempts=1, now=1.0)
        assert db.purge("dead_letters") == 1
    assert db.stats().depth == 2
    with db.transaction():
        assert db.purge("queue") == 2
    with pytest.raises(ValueError):
        db.purge("sqlite_master")


def test_a_file_of_the_rust_agent_keeps_its_table(tmp_path: Path) -> None:
    """Opening a file that holds ilagent 0.9's event_items table leaves that table untouched."""
    path = tmp_path / "ilagent.db3"
    legacy = sqlite3.connect(path)
    legacy.execute("CREATE TABLE event_items (id TEXT PRIMARY KEY, integration_key TEXT NOT NULL)")
    legacy.execute("INSERT INTO event_items VALUES ('x', 'il1api0')")
    legacy.commit()
    legacy.close()
    db = QueueDB(str(path))
    add(db, 1)
    db.close()
    check = sqlite3.connect(path)
    assert check.execute("SELECT * FROM event_items").fetchall() == [("x", "il1api0")]
    check.close()


def test_the_cli_mode_does_not_create_a_missing_file(tmp_path: Path) -> None:
    """With create=False a mistyped path is an error, not a new empty file."""
    with pytest.raises(sqlite3.OperationalError):
        QueueDB(str(tmp_path / "nope.db3"), create=False)
    assert not (tmp_path / "nope.db3").exists()


async def test_concurrent_enqueues_share_transactions(store: QueueStore) -> None:
    """200 concurrent enqueues are committed in far fewer transactions (group commit)."""
    ids = await asyncio.gather(
        *(
            store.enqueue(integration_key="k", path="/events", event=f'{{"n": {i}}}')
            for i in range(200)
        )
    )
    assert sorted(ids) == ids and len(set(ids)) == 200
    assert store.transactions < 20
    assert (await store.stats()).depth == 200


async def test_reads_after_writes_see_them_and_deletes_settle(store: QueueStore) -> None:
    """A page read submitted with inserts sees them committed; deletes and moves apply."""
    first = store.enqueue(integration_key="k", path="/events", event="{}")
    second = store.enqueue(integration_key="k", path="/events", event="{}")
    page = await store.page(after=0, limit=10)
    ids = [await first, await second]
    assert [row.id for row in page] == ids
    assert await store.delete(ids[0]) is True
    assert (
        await store.dead_letter(ids[1], reason="rejected", status=422, detail="no", attempts=1)
        is True
    )
    stats = await store.stats()
    assert (stats.depth, stats.dead_letters) == (0, 1)


async def test_a_locked_file_fails_writes_and_marks_the_store_unwritable(tmp_path: Path) -> None:
    """While another connection holds the write lock, writes fail and writable turns False."""
    path = str(tmp_path / "q.db3")
    store = QueueStore(path, busy_timeout=0.1)
    await store.open()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(sqlite3.OperationalError):
            await store.enqueue(integration_key="k", path="/events", event="{}")
        await store.probe()
        assert not store.writable and "locked" in (store.write_error or "")
    finally:
        other.execute("ROLLBACK")
        other.close()
    await store.probe()
    assert store.writable
    assert await store.enqueue(integration_key="k", path="/events", event="{}") == 1
    await store.close()
