"""``ilagent map``: a dry run of the mapping flags over messages given line by line.

Each message goes through the same :func:`ilagent.mapping.messages.map_message` the daemon uses (with
``--policy``, :func:`ilagent.mapping.policy.map_policy` and the three ilert calls it would make), and
the outcome is printed as one JSON object per line; nothing is sent anywhere. The printed URL and
event show the integration key in clear: this is a local dry run the user asked for, on their
own input, and the point of it is to see exactly what would be posted where.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO
from urllib.parse import quote

from ilagent.commands.common import (
    Parser,
    Subparsers,
    add_mapping_options,
    add_policy_options,
    mapping_rules,
    policy_rules,
)
from ilagent.config import DEFAULT_API_URL, PolicyRules
from ilagent.errors import NotFoundError, UsageError
from ilagent.mapping.messages import Dropped, Mapped, MappingRules, map_message
from ilagent.mapping.policy import map_policy
from ilagent.spool.checks import SQLITE_HEADER

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_DROPPED = 1  # with --check: at least one message would not become an event


def add_parser(sub: Subparsers) -> Parser:
    """Add ``map`` and its options."""
    mapper: Parser = sub.add_parser(
        "map", help="dry-run the mapping flags on messages (a file or stdin)",
        description="Show, for each message (one JSON object per line), the event and URL the "
                    "daemon would post, or why it would drop it; nothing is sent.",
        epilog="example: echo '{\"type\":\"ALARM\",\"mCode\":\"M1\",\"state\":\"SET\"}' | "
               "ilagent map --event_key il1api… --map_key_alert_key mCode "
               "--map_key_etype state --map_val_etype_alert SET --check")
    mapper.add_argument("-v", "--verbose", action="count", dest="sub_verbose", default=0,
                        help="more logging (as before the command)")
    mapper.add_argument("-f", dest="sub_db_file", metavar="SPOOL",
                        help="the daemon's SQLite file (not used by map; -f means it "
                             "everywhere, so a file that is not SQLite is refused)")
    mapper.add_argument("input_file", nargs="?", metavar="FILE",
                        help="messages, one per line (default: stdin)")
    mapper.add_argument("--file", dest="input_file_option", metavar="FILE",
                        help="deprecated: the same as FILE (kept for older scripts)")
    mapper.add_argument("-e", "--event_topic", default="test-topic", metavar="TOPIC",
                        help="topic name used in the default summary (default %(default)s)")
    mapper.add_argument("--message_key", help="Kafka message key to assume")
    mapper.add_argument("--check", action="store_true",
                        help="exit 1 if any message would be dropped or misses a mapped field")
    mapper.add_argument("--ilert_api_url", default=DEFAULT_API_URL,
                        metavar="URL", help="API base URL shown in the output")
    mapper.add_argument("--policy", action="store_true",
                        help="read the messages as escalation-policy updates (--policy_topic) "
                             "and print the three calls each would make")
    add_mapping_options(mapper)
    add_policy_options(mapper)
    return mapper


def run(args: argparse.Namespace) -> int:
    """Map the messages of FILE or stdin; return the exit code."""
    path = args.input_file or args.input_file_option
    for spool in (args.sub_db_file, args.db_file):
        if spool and not _may_be_sqlite(spool):
            raise UsageError(f"-f is the daemon's spool file, and {spool} is not SQLite: give "
                             f"the messages as FILE (ilagent map … {spool})")
    if args.input_file_option:
        logger.warning("map --file is deprecated: give the messages as FILE (ilagent map … "
                       "%s)", args.input_file_option)
    with _open_input(path) as source:
        lines = _Counted(source)
        if args.policy:
            code = run_policy(policy_rules(args), mapping_rules(args), lines,
                              api_url=args.ilert_api_url.rstrip("/"), check=args.check,
                              out=sys.stdout)
        else:
            code = run_map(mapping_rules(args), lines, topic=args.event_topic,
                           api_url=args.ilert_api_url.rstrip("/"), check=args.check,
                           out=sys.stdout, message_key=args.message_key)
    if args.check and not lines.messages:  # a CI check of an empty file checks nothing
        raise NotFoundError(f"no message to check: the input ({path or 'stdin'}) holds none")
    return code


class _Counted:
    """The input's lines, counting those that hold a message (are not blank)."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = lines
        self.messages = 0

    def __iter__(self) -> Iterator[str]:
        for line in self._lines:
            self.messages += bool(line.strip())
            yield line


def run_map(
    rules: MappingRules,
    lines: Iterable[str],
    *,
    topic: str,
    api_url: str,
    check: bool,
    out: TextIO,
    message_key: str | None = None,
) -> int:
    """Map each non-blank line as one message and write one JSON result per line to ``out``.

    Results carry the 1-based number of the input line, blank lines included, so they can be
    traced back to a file. ``message_key`` plays the Kafka message key of every line. Returns
    ``EXIT_DROPPED`` when ``check`` is set and any message was dropped (filtered ones too),
    else ``EXIT_OK``.
    """
    key = None if message_key is None else _to_bytes(message_key)
    base_url = api_url.rstrip("/")
    any_dropped = False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        result = map_message(rules, _to_bytes(line.rstrip("\r\n")), topic=topic, message_key=key)
        any_dropped = any_dropped or isinstance(result, Dropped) or bool(
            isinstance(result, Mapped) and result.missing)
        report = _report(number, result, base_url=base_url)
        out.write(json.dumps(report, ensure_ascii=False) + "\n")
    return EXIT_DROPPED if check and any_dropped else EXIT_OK


def run_policy(rules: PolicyRules, filters: MappingRules, lines: Iterable[str], *, api_url: str,
               check: bool, out: TextIO) -> int:
    """For each non-blank line, the three ilert calls the policy message would make (or why it
    makes none), one JSON result per line; like :func:`run_map` otherwise (a warning fails
    ``check`` as a drop does)."""
    any_dropped = False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        update = map_policy(rules, filters, _to_bytes(line.rstrip("\r\n")))
        report: dict[str, Any] = {"line": number}
        if isinstance(update, Dropped):
            any_dropped = True
            report.update(result="dropped", reason=update.reason.value, detail=update.detail)
        else:
            any_dropped = any_dropped or bool(update.warnings)
            report.update(result="policy_update", calls=[
                {"method": "POST", "url": f"{api_url}/users/search-email",
                 "body": {"email": update.email}},
                {"method": "GET", "url": f"{api_url}/escalation-policies/resolve?routing-key="
                                         f"{quote(update.routing_key, safe='')}"},
                {"method": "PUT",
                 "url": f"{api_url}/escalation-policies/<policy id>/levels/{update.level}",
                 "body": {"escalationTimeout": "<the level's own, else 1>",
                          "users": [{"id": "<the user's id>"}]}},
            ])
            if update.warnings:
                report["warnings"] = list(update.warnings)
        out.write(json.dumps(report, ensure_ascii=False) + "\n")
    return EXIT_DROPPED if check and any_dropped else EXIT_OK


def _report(number: int, result: Mapped | Dropped, *, base_url: str) -> dict[str, Any]:
    """The printed form of one message's outcome."""
    report: dict[str, Any] = {"line": number}
    if isinstance(result, Mapped):
        report.update(result="event", url=base_url + result.path, event=result.event)
    else:
        report.update(result="dropped", reason=result.reason.value, detail=result.detail)
    warnings = [*result.warnings, *(result.missing if isinstance(result, Mapped) else ())]
    if warnings:
        report["warnings"] = warnings
    return report


def _may_be_sqlite(path: str) -> bool:
    """False for a file that exists and is not SQLite (a missing or empty one may become a
    spool: map never opens it)."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError:
        return True
    return not header or header == SQLITE_HEADER


def _open_input(path: str | None) -> TextIO:
    """FILE, else stdin, read as UTF-8 with undecodable bytes kept as lone surrogates (so a
    Windows-1252 line is ``invalid_json``, never a ``UnicodeDecodeError``)."""
    if path:
        try:
            return open(path, encoding="utf-8", errors="surrogateescape")
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    with contextlib.suppress(ValueError, OSError):
        if sys.stdin.isatty():
            print("ilagent map: reading messages from the terminal, one JSON object per line; "
                  "end with Ctrl+D (or give a FILE)", file=sys.stderr, flush=True)
    if isinstance(sys.stdin, io.TextIOWrapper):
        sys.stdin.reconfigure(errors="surrogateescape")
    return sys.stdin


def _to_bytes(text: str) -> bytes:
    # Text read with surrogateescape carries undecodable bytes as lone surrogates; encoding them
    # with surrogatepass never raises and still yields invalid UTF-8, so the mapping sees such a
    # message the way ilagent does (undecodable ⇒ empty ⇒ invalid JSON, or an empty key).
    return text.encode("utf-8", "surrogatepass")
