"""The container's health check: ``python -m ilagent.healthcheck [PID]``, exit 0 when healthy.

A daemon with an HTTP server (``-p``) is healthy while its ``/health`` answers 204; any other
``ilagent`` process (a daemon without ``-p``, the sandbox) is healthy while it runs. The port is
found the way the daemon found it: its command line, its environment and its TOML file (read
from ``/proc/PID``), resolved by the daemon's own code, so ``docker run IMAGE daemon -p 8977``,
``ILAGENT_PORT`` and ``port = 8977`` in ``--config`` all work without telling the check.
Without PID, the first ``ilagent`` process in ``/proc`` is checked (PID 1 in a container, or
its child under an init such as ``docker run --init``). One line on stdout says why; exit 1
when unhealthy.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ilagent.cli import build_parser, resolve_options
from ilagent.errors import IlagentError

PROC = Path("/proc")
TIMEOUT = 3.0  # seconds for /health to answer; Docker's own --timeout should be larger
WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


@dataclass(frozen=True)
class Process:
    """What ``/proc`` tells about a process: its command line, environment and directory."""

    pid: int
    cmdline: list[str]
    environ: dict[str, str]
    cwd: str | None


def ilagent_arguments(cmdline: Sequence[str]) -> list[str] | None:
    """The arguments an ``ilagent`` command line gave the program, or None for another program.

    Recognised: ``ilagent …`` (any path), ``python /path/ilagent …`` (the console script run by
    its interpreter, as ``/proc`` shows it) and ``python -m ilagent …``.
    """
    head = [os.path.basename(token) for token in cmdline[:3]]
    if head[:1] == ["ilagent"]:
        return list(cmdline[1:])
    if head and head[0].startswith("python"):
        if head[1:2] == ["ilagent"]:
            return list(cmdline[2:])
        if head[1:3] == ["-m", "ilagent"]:
            return list(cmdline[3:])
    return None


def read_process(pid: int) -> Process | None:
    """The process ``pid`` as ``/proc`` shows it, or None when it is gone or not ours to read."""
    base = PROC / str(pid)
    try:
        cmdline = [os.fsdecode(t) for t in (base / "cmdline").read_bytes().split(b"\0") if t]
        raw_env = (base / "environ").read_bytes().split(b"\0")
    except OSError:
        return None
    environ = dict(os.fsdecode(item).split("=", 1) for item in raw_env if b"=" in item)
    try:
        cwd: str | None = os.readlink(base / "cwd")
    except OSError:
        cwd = None
    return Process(pid=pid, cmdline=cmdline, environ=environ, cwd=cwd)


def find_ilagent() -> Process | None:
    """The ilagent process with the lowest PID (PID 1 in a container without an init)."""
    pids = sorted(int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit())
    for pid in pids:
        if pid == os.getpid():
            continue
        process = read_process(pid)
        if process is not None and ilagent_arguments(process.cmdline) is not None:
            return process
    return None


def health_url(process: Process) -> str | None:
    """``/health`` of the daemon's HTTP server, or None when it serves none; raises
    ``IlagentError`` (or ``SystemExit`` from the parser) when its options cannot be read."""
    arguments = ilagent_arguments(process.cmdline) or []
    parser = build_parser()
    args = parser.parse_args(arguments)
    if args.command != "daemon":
        return None
    if process.cwd is not None:  # a relative --config is relative to the daemon's directory
        os.chdir(process.cwd)
    resolve_options(parser, args, arguments, environ=process.environ)
    if args.port is None:
        return None
    host = WILDCARDS.get(args.http_host, args.http_host)
    return f"http://{f'[{host}]' if ':' in host else host}:{args.port}/health"


def probe(url: str) -> str | None:
    """None when ``url`` answers 204 within :data:`TIMEOUT`, else why not."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        return f"{url}: {getattr(exc, 'reason', exc)}"
    return None if status == 204 else f"{url} answered {status}"


def check(pid: int | None = None) -> tuple[bool, str]:
    """Whether the ilagent process ``pid`` (None: the first one found) is healthy, and why."""
    process = find_ilagent() if pid is None else read_process(pid)
    if process is None or ilagent_arguments(process.cmdline) is None:
        return False, f"no ilagent process {'found' if pid is None else f'with pid {pid}'}"
    try:
        url = health_url(process)
    except (IlagentError, SystemExit) as exc:
        return False, f"pid {process.pid}: its options cannot be read ({exc})"
    if url is None:
        return True, f"pid {process.pid} runs (no HTTP server to ask)"
    failure = probe(url)
    if failure is not None:
        return False, f"pid {process.pid}: {failure}"
    return True, f"pid {process.pid}: {url} answered 204"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the verdict on one line; exit 0 when healthy, 1 when not."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if len(arguments) > 1 or (arguments and not arguments[0].isdigit()):
        print("usage: python -m ilagent.healthcheck [PID]", file=sys.stderr)
        return 2
    healthy, reason = check(int(arguments[0]) if arguments else None)
    print(f"{'healthy' if healthy else 'unhealthy'}: {reason}")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
