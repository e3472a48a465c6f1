"""``ilagent sandbox``: options of the local ilert stand-in; the server is :mod:`ilagent.sandbox`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ilagent.commands.common import Parser, Subparsers, port
from ilagent.config import DEFAULT_AGENT_URL
from ilagent.errors import EXIT_USAGE, ConfigError, ResourceError

if TYPE_CHECKING:
    from ilagent.sandbox.seed import Seed


def add_parser(sub: Subparsers) -> Parser:
    """Add ``sandbox`` and its options."""
    sandbox: Parser = sub.add_parser(
        "sandbox", help="run a local ilert stand-in with a web page",
        description="A local stand-in for ilert's event, heartbeat and escalation-policy API, "
                    "with a live page.",
        epilog="example: ilagent sandbox -p 8080 & ILERT_API_URL=http://127.0.0.1:8080/api "
               "ilagent daemon …")
    sandbox.add_argument("-p", "--port", type=port, default=8080,
                         help="port (default %(default)s)")
    sandbox.add_argument("--host", default="127.0.0.1", help="address (default %(default)s)")
    sandbox.add_argument("--db", metavar="FILE", help="keep state in this SQLite file")
    sandbox.add_argument("--rate_limit", action="store_true",
                         help="answer 429 like ilert beyond 50 events/min per integration key "
                              "and 120 policy calls/min per API key")
    sandbox.add_argument("--seed", metavar="FILE",
                         help="JSON file of users, escalation policies and API keys to start "
                              "with (and to go back to on reset)")
    sandbox.add_argument("--agent_url", metavar="URL|off", default=DEFAULT_AGENT_URL,
                         help="the page links each alert to its story at this daemon's "
                              "/trace (default %(default)s; off: no links)")
    sandbox.add_argument("--api_key", metavar="KEY", action="append", default=[],
                         help="accept this user API key as 'Authorization: Bearer KEY' on the "
                              "policy calls (repeatable)")
    return sandbox


def run(args: argparse.Namespace) -> int:
    """Serve the sandbox until interrupted."""
    from ilagent.sandbox import SandboxConfig, serve

    config = SandboxConfig(host=args.host, port=args.port, db_path=args.db,
                           rate_limit=args.rate_limit, seed=startup_seed(args),
                           agent_url=agent_url(args.agent_url))
    try:
        asyncio.run(serve(config))
    except sqlite3.Error as exc:
        raise ResourceError(f"cannot use --db {args.db}: {exc}") from None
    except OSError as exc:
        raise ResourceError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
                            exit_code=EXIT_USAGE) from None
    return 0


def agent_url(text: str) -> str:
    """``--agent_url``: an http(s) URL without a trailing slash; "" for ``off``."""
    if text.strip().lower() == "off":
        return ""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise ConfigError(f"--agent_url must be an http:// or https:// URL of the daemon "
                          f"(or off), got {text!r}")
    return text.strip().rstrip("/")


def startup_seed(args: argparse.Namespace) -> Seed:
    """The ``--seed`` file and the ``--api_key`` keys as one checked seed."""
    from ilagent.sandbox.policies import check_seed
    from ilagent.sandbox.seed import Refusal, Seed, parse_api_key, parse_seed

    try:
        keys = tuple(parse_api_key(key, "--api_key") for key in args.api_key)
    except Refusal as refusal:
        raise ConfigError(refusal.message) from None
    if args.seed is None:
        return Seed(api_keys=keys)
    try:
        with open(args.seed, encoding="utf-8") as file:
            body = json.load(file)
    except OSError as exc:
        raise ResourceError(f"cannot read --seed {args.seed}: {exc.strerror or exc}") from None
    except ValueError as exc:  # not JSON, or not UTF-8
        raise ConfigError(f"--seed {args.seed} is not JSON: {exc}") from None
    try:
        seed = parse_seed(body).with_api_keys(keys)
        check_seed(seed)
    except Refusal as refusal:
        raise ConfigError(f"--seed {args.seed}: {refusal.message}") from None
    return seed
