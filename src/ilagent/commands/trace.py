"""``ilagent trace``: what happened to an alert's events, told from the daemon's journal.

``--alert_key K`` tells one alert's story (keys compared as ilert compares them), ``--since``
keeps what ended in the last while (alone: every event of that while); oldest first, each
event with where its message was, its route and type, each answer of ilert with its time and
latency, and the verdict. ``--json`` prints the same as the daemon's ``/trace``. The journal is
read-only here and may be read beside a running daemon.

``--offset TOPIC:PARTITION:OFFSET`` — one Kafka message read again and explained with today's
config, for what is not in the journal (a filtered message) — is
:mod:`ilagent.commands.trace_offset`'s.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from typing import Any

from ilagent.commands import trace_offset
from ilagent.commands.common import (
    Parser,
    Subparsers,
    add_global_options,
    db_file,
    more_than_zero,
)
from ilagent.config import default_journal
from ilagent.errors import ConfigError, ResourceError

DEFAULT_LIMIT = 1000


def since_seconds(text: str) -> float:
    """``--since``: a duration (90s, 30m, 1h, 2d, 1w)."""
    from ilagent.journal.entries import parse_since

    try:
        return parse_since(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(sub: Subparsers) -> Parser:
    """Add ``trace`` and its options."""
    trace: Parser = sub.add_parser(
        "trace", help="tell what happened to an alert's events (the daemon's journal), or "
                      "explain one Kafka message (--offset)",
        description="The story of one alert from the daemon's journal (--journal): each event "
                    "with its source position, route and type, each answer of ilert with its "
                    "time and latency, and the verdict. Filtered messages are not journaled: "
                    "--offset reads one message again (no consumer group joined or committed) "
                    "and explains what today's config makes of it; nothing is sent.",
        epilog="example: ilagent trace --alert_key PRESS-01\n"
               "         ilagent trace --since 30m --json -f /var/lib/ilagent/ilagent.db3\n"
               "         ilagent --config ilagent.toml trace --offset plant-alarms:0:1234")
    add_global_options(trace)
    trace.add_argument("--alert_key", "--alert-key", metavar="KEY",
                       help="the alert whose events to show (trimmed, any case, as ilert "
                            "compares alert keys)")
    trace.add_argument("--since", type=since_seconds, metavar="DURATION",
                       help="only events that ended within this long (90s, 30m, 1h, 2d, 1w); "
                            "alone: every event of that while")
    trace.add_argument("--journal", metavar="PATH",
                       help="the journal file (default: the daemon's, the spool file -f with "
                            "'.journal.db' added: ./ilagent.db3.journal.db)")
    trace.add_argument("--limit", type=more_than_zero, default=DEFAULT_LIMIT, metavar="N",
                       help="the newest N events at most (default %(default)s)")
    trace.add_argument("--json", action="store_true",
                       help="one JSON document, as the daemon's /trace answers")
    trace_offset.add_arguments(trace)
    return trace


def run(args: argparse.Namespace) -> int:
    """Print the story; exit 0 (also when nothing matched), 1 without a journal, 2 for usage."""
    if getattr(args, "offset", None) is not None:
        if args.alert_key is not None or args.since is not None:
            raise ConfigError("--offset reads one Kafka message: give it without --alert_key "
                              "and --since")
        return trace_offset.run(args)
    if args.alert_key is None and args.since is None:
        raise ConfigError("give --alert_key KEY, --since DURATION (e.g. 1h) or both (the journal), "
                          "or --offset TOPIC:PARTITION:OFFSET (one Kafka message explained)")
    path = (args.journal or "").strip() or default_journal(db_file(args))
    if path.lower() == "off":
        raise ConfigError("--journal off: give the journal file the daemon writes "
                          "(--journal PATH)")
    since = time.time() - args.since if args.since is not None else None
    events = _read(path, alert_key=args.alert_key, since=since, limit=args.limit)
    if args.json:
        from ilagent.journal.entries import iso

        print(json.dumps({"alertKey": args.alert_key,
                          "since": iso(since) if since is not None else None,
                          "journal": path, "events": events}, indent=2, ensure_ascii=False))
        return 0
    print(_heading(path, args.alert_key, args.since, len(events)))
    for event in events:
        print()
        print("\n".join(tell(event)))
    return 0


def _read(path: str, *, alert_key: str | None, since: float | None,
          limit: int) -> list[dict[str, Any]]:
    from ilagent.journal.db import JournalDB, NoJournal
    from ilagent.journal.entries import as_json

    try:
        db = JournalDB(path, create=False)
    except NoJournal:
        raise ResourceError(
            f"no journal at {path}: a daemon keeps one beside its spool file (-f FILE: "
            "FILE.journal.db) when it has one (the HTTP intake, MQTT's --mqtt_buffer), else "
            "only where --journal PATH says; give that file with --journal PATH. One Kafka "
            "message is explained without a journal: --offset TOPIC:PARTITION:OFFSET") from None
    except (sqlite3.Error, OSError) as exc:
        raise ResourceError(f"cannot read the journal {path}: {exc}") from None
    try:
        return [as_json(row) for row in db.story(alert_key=alert_key, since=since,
                                                 limit=limit)]
    except sqlite3.Error as exc:
        raise ResourceError(f"cannot read the journal {path}: {exc}") from None
    finally:
        db.close()


def _heading(path: str, alert_key: str | None, since: float | None, count: int) -> str:
    what = f"alert {alert_key}" if alert_key is not None else "every alert"
    within = f" that ended within {since:g} s" if since is not None else ""
    found = f"{count} event{'s' if count != 1 else ''}" if count else "no event"
    return f"{what}: {found}{within} (journal {path})"


def tell(event: dict[str, Any]) -> list[str]:
    """One event in words: when and where, what, each answer, the verdict."""
    received = event["receivedAt"].replace("T", " ")
    route = f"  route {event['route']}" if event["route"] else ""
    lines = [f"{received}  {event['eventType'] or '?':<8} {event['where']}{route}  "
             f"key {event['integrationKey']}"]
    if event["summary"]:
        lines.append(f"    {event['summary']!r}")
    shown = len(event["attempts"])
    for number, attempt in enumerate(event["attempts"], start=1):
        if number == 11 and event["answers"] > shown:  # between the first and the last kept
            lines.append(f"    … {event['answers'] - shown} answers not kept …")
        status = attempt["status"] if attempt["status"] is not None else "no answer"
        reason = f" {attempt['reason']}" if attempt["reason"] else ""
        detail = f": {attempt['detail']}" if attempt.get("detail") else ""
        lines.append(f"    {attempt['at'][11:]}  {status} {attempt['outcome']}{reason}  "
                     f"{attempt['ms']:g} ms{detail}")
    lines.append(f"    → {_verdict(event)}")
    return lines


def _verdict(event: dict[str, Any]) -> str:
    answers = event["answers"]
    tries = f" after {answers} answer{'s' if answers != 1 else ''}"
    if event["verdict"] == "delivered":
        return f"delivered{tries} at {event['endedAt'][11:]}"
    if event["verdict"] == "stale":
        return "stale: not sent, older than --max_event_age (a dead letter)"
    return f"dead-lettered ({event['reason']}){tries} at {event['endedAt'][11:]}"
