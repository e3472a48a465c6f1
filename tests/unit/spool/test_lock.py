"""One daemon per spool file: the lock, its holder, and the files `queue` refuses."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from ilagent.spool.checks import NotASpool
from ilagent.spool.db import QueueDB
from ilagent.spool.lock import SpoolLock, SpoolOwned, holder


def test_a_second_lock_on_the_same_file_is_refused_with_the_owner(tmp_path: Path) -> None:
    """While one lock is held, another fails naming the PID; once released, it works."""
    spool = str(tmp_path / "q.db3")
    first = SpoolLock(spool)
    first.acquire()
    assert holder(spool) == os.getpid()
    with pytest.raises(SpoolOwned) as refused:
        SpoolLock(spool).acquire()
    assert refused.value.exit_code == 2 and f"pid {os.getpid()}" in str(refused.value)
    first.release()
    assert holder(spool) is None
    second = SpoolLock(spool)
    second.acquire()
    second.release()


def test_queue_commands_never_create_tables_in_a_foreign_file(tmp_path: Path) -> None:
    """Another program's SQLite file is refused and left as it was."""
    foreign = tmp_path / "app.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    with pytest.raises(NotASpool):
        QueueDB(str(foreign), create=False, read_only=True)
    with pytest.raises(NotASpool):
        QueueDB(str(foreign), create=False)
    with sqlite3.connect(foreign) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"users"}
