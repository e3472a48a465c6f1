"""``ilagent sandbox``: options of the local ilert stand-in; the server is :mod:`ilagent.sandbox`."""

from __future__ import annotations

import argparse
import asyncio
import sqlite3

from ilagent.commands.common import Parser, Subparsers, port
from ilagent.errors import EXIT_USAGE, ResourceError


def add_parser(sub: Subparsers) -> Parser:
    """Add ``sandbox`` and its options."""
    sandbox: Parser = sub.add_parser(
        "sandbox", help="run a local ilert stand-in with a web page",
        description="A local stand-in for ilert's event and heartbeat API, with a live page.",
        epilog="example: ilagent sandbox -p 8080 & ILERT_API_URL=http://127.0.0.1:8080/api "
               "ilagent daemon …")
    sandbox.add_argument("-p", "--port", type=port, default=8080,
                         help="port (default %(default)s)")
    sandbox.add_argument("--host", default="127.0.0.1", help="address (default %(default)s)")
    sandbox.add_argument("--db", metavar="FILE", help="keep state in this SQLite file")
    sandbox.add_argument("--rate_limit", action="store_true",
                         help="answer 429 like ilert beyond 50 events/min per key")
    return sandbox


def run(args: argparse.Namespace) -> int:
    """Serve the sandbox until interrupted."""
    from ilagent.sandbox import SandboxConfig, serve

    config = SandboxConfig(host=args.host, port=args.port, db_path=args.db,
                           rate_limit=args.rate_limit)
    try:
        asyncio.run(serve(config))
    except sqlite3.Error as exc:
        raise ResourceError(f"cannot use --db {args.db}: {exc}") from None
    except OSError as exc:
        raise ResourceError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
                            exit_code=EXIT_USAGE) from None
    return 0
