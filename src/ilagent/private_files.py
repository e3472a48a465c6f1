"""Files only their owner reads: the spool holds integration keys, the sandbox's file events.

The command line sets the umask to :data:`UMASK` first thing, so every file the process
creates is 0600 and every directory 0700. A file that already exists keeps its mode whoever
opens it, so the spool, its lock and the sandbox's ``--db`` go through :func:`narrow` when
they are opened: one that others may read (left by ilagent 0.9, a copy, a restore) is narrowed
to its owner, with one INFO line. SQLite gives the ``-wal`` and ``-shm`` files it creates the
mode of their database file; those left behind by an earlier run are narrowed with it.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable

logger = logging.getLogger(__name__)

UMASK = 0o077  # nothing for the group, nothing for others
OWNER_ONLY = 0o700  # the permission bits kept when a file is narrowed
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


def sqlite_files(path: str) -> list[str]:
    """An SQLite database file and the files SQLite keeps beside it."""
    return [path, *(path + suffix for suffix in SQLITE_SIDECARS)]


def narrow(paths: Iterable[str], *, what: str, quiet: bool = False) -> None:
    """Take every permission of the group and of others away from each of ``paths`` that
    exists; one INFO line names those that had any (none with ``quiet``: files this process
    just made). A file that cannot be changed (another owner's) is one WARNING, not an error."""
    narrowed = []
    for path in paths:
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
            if mode & ~OWNER_ONLY:
                os.chmod(path, mode & OWNER_ONLY)
                narrowed.append(f"{path} from {mode:04o} to {mode & OWNER_ONLY:04o}")
        except FileNotFoundError:
            continue
        except OSError as exc:
            logger.warning("%s %s may be read by others and cannot be narrowed to its owner: "
                           "%s", what, path, exc.strerror or exc)
    if narrowed and not quiet:
        logger.info("%s could be read by others: narrowed %s, so only its owner may read it",
                    what, ", ".join(narrowed))
