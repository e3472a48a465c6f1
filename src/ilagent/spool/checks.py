"""Is a file a spool? Checked before anything is created beside it or inside it.

A ``-f`` that names another program's file (a text file, an SQLite file with tables of its
own) is refused with :class:`NotASpool` before a lock file is made next to it or a table is
added to it; a missing or empty file may still become a spool.
"""

from __future__ import annotations

import sqlite3

from ilagent.spool import legacy


class NotASpool(sqlite3.DatabaseError):
    """The file is not SQLite, or holds neither our tables nor ilagent 0.9's."""

    def __init__(self, path: str, why: str = "no queue or event_items table") -> None:
        super().__init__(f"{path} is not an ilagent spool file ({why})")


SQLITE_HEADER = b"SQLite format 3\x00"


def check_spool_file(path: str) -> None:
    """Raise :class:`NotASpool` for a file that exists but is not a spool (another program's
    file: text, or SQLite with its own tables); a missing or empty file may become one."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError:  # missing (created later), or a problem opening reports precisely
        return
    if not header:
        return
    if header != SQLITE_HEADER:
        raise NotASpool(path, "not an SQLite file; -f names the daemon's queue file")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = legacy.tables(conn)
    finally:
        conn.close()
    if names and not names & {"queue", "ilagent", "event_items"}:
        raise NotASpool(path, "another program's SQLite file; -f names the daemon's queue file")
