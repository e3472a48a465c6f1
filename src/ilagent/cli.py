"""The ``ilagent`` command: builds the parser from the subcommand modules and runs one of them.

Each subcommand lives in :mod:`ilagent.commands` (its options and its ``run``). A usage error is
one line on stderr and exit code 2; an :class:`~ilagent.errors.IlagentError` is one line and its
own exit code; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ilagent import __version__
from ilagent.commands import daemon, queue, sandbox, send
from ilagent.commands import map as mapping
from ilagent.commands.common import Parser
from ilagent.errors import EXIT_INTERRUPTED, EXIT_USAGE, IlagentError

RUNNERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "daemon": daemon.run,
    "event": send.run,
    "heartbeat": send.run,
    "queue": queue.run,
    "map": mapping.run,
    "sandbox": sandbox.run,
}


def build_parser() -> Parser:
    """The whole command line."""
    parser = Parser(prog="ilagent", description="Bridge Kafka and HTTP to ilert alerts.")
    parser.add_argument("-V", "--version", action="version", version=f"ilagent {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more logging: -vv info, -vvv debug (default: warnings)")
    parser.add_argument("-f", "--file", dest="db_file", metavar="FILE",
                        help="SQLite file of the daemon's queue (default ./ilagent.db3)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    daemon.add_parser(sub)
    send.add_parsers(sub)
    queue.add_parser(sub)
    mapping.add_parser(sub)
    sandbox.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ilagent`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from ilagent import logs

    logs.setup(args.verbose + getattr(args, "sub_verbose", 0))
    try:
        return RUNNERS[args.command](args)
    except IlagentError as exc:
        print(f"ilagent {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
