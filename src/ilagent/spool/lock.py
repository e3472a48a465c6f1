"""One daemon per spool file: an advisory lock on ``<spool>.lock`` that records the owner's PID.

Two daemons on one file would both deliver every queued event. The daemon holds an exclusive
``flock`` on the sidecar file for its whole life (the kernel drops it when the process dies,
so a crash never leaves a stale lock); a second daemon finds it taken and refuses to start,
naming the holder. SQLite's own exclusive mode is not used: it would lock the ``ilagent
queue`` commands out, and they are meant to work beside the owner.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3

from ilagent.errors import EXIT_USAGE, ResourceError
from ilagent.private_files import narrow
from ilagent.spool.checks import check_spool_file


class SpoolOwned(ResourceError):
    """Another live process owns the spool file (exit 2: start one daemon per file)."""

    def __init__(self, path: str, pid: int | None) -> None:
        holder = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"the spool file {path} is in use by another ilagent daemon ({holder}, lock "
            f"{lock_path(path)}); give this one its own file with -f", exit_code=EXIT_USAGE)
        self.pid = pid


def lock_path(spool: str) -> str:
    """The sidecar lock file of a spool file."""
    return f"{spool}.lock"


class SpoolLock:
    """The exclusive lock of one spool file, held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, spool: str) -> None:
        self.spool = spool
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock and write our PID; raise :class:`SpoolOwned` if someone holds it.

        The file is checked first: a ``-f`` that names another program's file is refused
        (``ResourceError``) before a lock file is created beside it."""
        try:
            check_spool_file(self.spool)
        except sqlite3.Error as exc:
            raise ResourceError(str(exc)) from None
        try:
            fd = os.open(lock_path(self.spool), os.O_RDWR | os.O_CREAT, 0o600)
            narrow([lock_path(self.spool)], what="the spool's lock file")
        except OSError as exc:
            raise ResourceError(f"cannot open the queue file {self.spool}: its lock file "
                                f"{lock_path(self.spool)} cannot be created: "
                                f"{exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise SpoolOwned(self.spool, pid) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (the file stays; an unlocked file means nobody owns the spool)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def holder(spool: str) -> int | None:
    """The PID of the live daemon that owns the spool file, or None when nobody does."""
    try:
        fd = os.open(lock_path(spool), os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_pid(fd) or -1
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0) or None
    except (OSError, ValueError):
        return None
