"""The ``ilagent`` command: builds the parser from the subcommand modules and runs one of them.

Each subcommand lives in :mod:`ilagent.commands` (its options and its ``run``). After parsing,
options not given on the command line are taken from the environment and the TOML file
(:mod:`ilagent.commands.sources`). A usage error is one line on stderr and exit code 2; an
:class:`~ilagent.errors.IlagentError` is one line and its own exit code; no traceback reaches
the user.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import NoReturn

from ilagent import __version__
from ilagent.commands.common import ROUTE_REPLACES, Parser, secret_values
from ilagent.commands.kafka_options import CONNECTION as KAFKA_CONNECTION
from ilagent.commands.sources import Sources, resolve, settable
from ilagent.errors import EXIT_INTERRUPTED, EXIT_USAGE, IlagentError
from ilagent.private_files import UMASK
from ilagent.secret_options import register_secrets

# each command's module under ilagent.commands, imported only inside main's guard: a Ctrl+C
# while they load (aiohttp takes a while) ends quietly, not in a traceback
MODULES = {"daemon": "daemon", "event": "send", "heartbeat": "send", "queue": "queue",
           "map": "map", "sandbox": "sandbox", "config": "config", "drill": "drill",
           "replay": "replay", "trace": "trace"}
CONNECTION = frozenset({"integration_key", "ilert_api_url", "ilert_beat_url", "ilert_timeout",
                        "retries"})
# per command: which of its options the environment and the file may set (None: all)
FROM_OUTSIDE: dict[str, frozenset[str] | None] = {
    "daemon": None,
    "config": None,
    "drill": None,
    "event": CONNECTION,
    "heartbeat": CONNECTION,
    "map": frozenset({"ilert_api_url", *KAFKA_CONNECTION}),  # --last: Kafka as the daemon has it
    # a Kafka spool: where it is and how to reach it, as the daemon has them
    "queue": frozenset({"spool", "kafka_group_id", "dlq_topic", *KAFKA_CONNECTION}),
    # the daemon's Kafka connection, topics and mapping settings: its own file works as it is
    "replay": frozenset({"event_topic", "ilert_api_url", "event_key", *ROUTE_REPLACES,
                         *KAFKA_CONNECTION}),
    # the daemon's journal (--alert_key) and, for --offset, its Kafka and mapping settings
    "trace": frozenset({"journal", "event_topic", "heartbeat_topic", "policy_topic",
                        "event_key", *ROUTE_REPLACES, "policy_routing_keys", "map_key_email",
                        "map_key_shift", "shift_offset", *KAFKA_CONNECTION}),
}


def build_parser() -> Parser:
    """The whole command line; ``parser.commands`` maps each command to its own parser."""
    parser = Parser(prog="ilagent", description="Bridge Kafka, MQTT and HTTP to ilert alerts.")
    parser.add_argument("-V", "--version", action="version", version=f"ilagent {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more logging: -vv info, -vvv debug (default: warnings)")
    parser.add_argument("-f", "--file", dest="db_file", metavar="FILE",
                        help="SQLite file of the daemon's queue (default ./ilagent.db3)")
    parser.add_argument("--config", metavar="FILE",
                        help="TOML file with settings (env ILAGENT_CONFIG); flags and "
                             "ILAGENT_* variables take precedence over it")
    from ilagent.commands import config, daemon, drill, queue, replay, sandbox, send, trace
    from ilagent.commands import map as mapping

    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands = {"daemon": daemon.add_parser(sub), **send.add_parsers(sub),
                "queue": queue.add_parser(sub), "map": mapping.add_parser(sub),
                "sandbox": sandbox.add_parser(sub), "config": config.add_parser(sub),
                "drill": drill.add_parser(sub), "replay": replay.add_parser(sub),
                "trace": trace.add_parser(sub)}
    parser.commands = commands  # type: ignore[attr-defined]
    return parser


def resolve_options(parser: Parser, args: argparse.Namespace, tokens: Sequence[str], *,
                    environ: Mapping[str, str] | None = None) -> Sources:
    """Fill what the command line ``tokens`` left unset in ``args`` from the environment and the
    TOML file, as far as the command takes options from outside; raises ``ConfigError``."""
    commands: dict[str, Parser] = parser.commands  # type: ignore[attr-defined]
    known = {name for p in (parser, *commands.values()) for name in settable(p)}
    outside: list[tuple[argparse.ArgumentParser, frozenset[str] | None]] = [(parser, None)]
    if args.command in FROM_OUTSIDE:
        outside.append((chosen(commands[args.command], args), FROM_OUTSIDE[args.command]))
    return resolve(args, outside, tokens, known=known | {"kafka_config"}, environ=environ)


# short flags of other Kafka tools (kcat: -b brokers, -G group, -t topic) and of `event`
HINTS = {"daemon": {"-g": "--kafka_group_id", "-G": "--kafka_group_id", "-t": "-e/--event_topic",
                    "-k": "--event_key"}}


def chosen(command: argparse.ArgumentParser,
           args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the command's action when it has actions (`queue list`), else its own."""
    for action in command._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(getattr(args, action.dest, ""), command)  # type: ignore[no-any-return]
    return command


def unrecognized(parser: Parser, args: argparse.Namespace, extras: Sequence[str]) -> NoReturn:
    """A usage error from the parser of the command (or action) the extras were given to,
    with a "did you mean" for the first unknown option."""
    target: argparse.ArgumentParser = parser
    if args.command is not None:
        target = chosen(parser.commands[args.command], args)  # type: ignore[attr-defined]
    message = f"unrecognized arguments: {' '.join(extras)}"
    unknown = next((e.partition("=")[0] for e in extras if e.startswith("-")), None)
    if unknown is not None:
        known = [s for a in target._actions for s in a.option_strings if s.startswith("--")]
        hint = HINTS.get(args.command or "", {}).get(unknown) or next(
            iter(difflib.get_close_matches(unknown, known, n=1, cutoff=0.75)), None)
        if hint == unknown:  # `queue --json list`: an option of the action, given before it
            message += f" (it goes after the action: {target.prog} {unknown})"
        elif hint:
            message += f" (did you mean {hint}?)"
    target.error(message)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ilagent`` command; returns the exit code (130 after Ctrl+C, at any
    moment, without a traceback).

    Every file and directory the command creates is its owner's alone (umask 077, see
    :mod:`ilagent.private_files`); the umask is given back on return, for callers in process."""
    umask = os.umask(UMASK)
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        os.umask(umask)


def _interrupts() -> tuple[type[BaseException], ...]:
    """What Ctrl+C can come out of a command as: KeyboardInterrupt, or — once asyncio is
    loaded — the main task's CancelledError.

    ``asyncio.run`` installs its SIGINT handler (which cancels the main task) and only then
    zeroes its count of interrupts; a Ctrl+C between the two cancels the task but is forgotten,
    and the CancelledError comes out instead of KeyboardInterrupt (CPython 3.11, seen in a
    sandbox stopped in its first 0.3 s). Nothing else cancels a command's main task."""
    asyncio = sys.modules.get("asyncio")
    return (KeyboardInterrupt,) if asyncio is None else (KeyboardInterrupt, asyncio.CancelledError)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    tokens = list(sys.argv[1:] if argv is None else argv)
    args, extras = parser.parse_known_args(tokens)
    if extras:
        unrecognized(parser, args, extras)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from ilagent import logs

    try:
        args.sources = resolve_options(parser, args, tokens)
        args.parser = parser.commands[args.command]  # type: ignore[attr-defined]
        logs.setup(args.verbose + getattr(args, "sub_verbose", 0))
        # masked by value from here on, whatever the command; a value too short to mask is
        # warned of by the command once its options are checked (an error stays one line)
        register_secrets(secret_values(args, args.sources.file_kafka_config), warn=False)
        for warning in args.sources.warnings:
            logging.getLogger(__name__).warning("%s", warning)
        runner: Callable[[argparse.Namespace], int] = importlib.import_module(
            f"ilagent.commands.{MODULES[args.command]}").run
        if signal.getsignal(signal.SIGINT) is signal.SIG_DFL:  # loaded: see ilagent.__main__
            signal.signal(signal.SIGINT, signal.default_int_handler)
        return runner(args)
    except IlagentError as exc:
        print(logs.hide_secrets(f"ilagent {args.command}: error: {exc}"), file=sys.stderr)
        return exc.exit_code
    except _interrupts():
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `ilagent queue list | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
