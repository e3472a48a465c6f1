"""Every exception ilagent raises on purpose, and the exit code each one ends a command with.

::

    IlagentError                 exit 1   base: a one-line message, never a traceback
    ├── UsageError               exit 2   the command line asks for something that cannot work
    │   └── ConfigError          exit 2   a configuration the daemon cannot run with
    ├── ResourceError            exit 1   the machine refused at run time: a file, a database
    │   │                                 (a port in use: exit 2, for the daemon and the sandbox)
    │   └── SpoolUnavailable     (503)    the spool did not take or confirm an intake's write
    │       └── SpoolFull        (503)    the SQLite spool holds --spool_max_bytes already
    ├── NotFoundError            exit 1   a file or row the command names is not there
    └── EventError               (400)    an event body ilert would refuse; a value, not a crash

The command line catches :class:`IlagentError`, prints ``ilagent <command>: error: <message>``
and exits with :attr:`IlagentError.exit_code`. Everything expected while running (a dropped
message, a 4xx from ilert) is a value, not an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class IlagentError(Exception):
    """Base of ilagent's own errors; ``exit_code`` is what a command exits with."""

    exit_code = EXIT_FAILED


class UsageError(IlagentError):
    """The command line asks for something that cannot work."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError, ValueError):
    """A configuration the daemon cannot run with, naming the option."""


class ResourceError(IlagentError):
    """A file, database or port refused at run time (not a mistake in the configuration)."""

    def __init__(self, message: str, *, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class SpoolUnavailable(ResourceError):
    """The spool did not take (or did not confirm in time) an event: the intake answers 503
    ``QUEUE_UNAVAILABLE``, with ``Retry-After`` when ``retry_after`` is set."""

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SpoolFull(SpoolUnavailable):
    """The SQLite spool holds ``limit`` bytes already (``used``): 503 ``QUEUE_FULL``."""

    def __init__(self, *, used: int, limit: int) -> None:
        super().__init__(f"the spool is full ({used} of {limit} bytes): nothing was queued, "
                         "retry later")
        self.used, self.limit = used, limit


class NotFoundError(IlagentError):
    """A file or row the command names does not exist."""


@dataclass(frozen=True)
class EventError(IlagentError, ValueError):
    """Why an event body is invalid; ``code`` is a stable machine-readable word."""

    field: str
    code: str
    message: str

    def __str__(self) -> str:
        return self.message

    def as_body(self, status: int = 400) -> dict[str, Any]:
        """The ilert error body ``{status, message, code}``."""
        return {"status": status, "message": self.message, "code": self.code}
