"""``ilagent replay``: a candidate config over a time range of real Kafka traffic, before it runs.

The messages of the topics ``-e`` from ``--since`` to ``--until`` are read the way ``map --last``
reads (:func:`ilagent.kafka.sample.read_range`: ``offsets_for_times``, assign only, a throwaway
group id never committed), in (timestamp, partition, offset) order. Each goes through the
candidate and the baseline (:mod:`ilagent.commands.candidate`) exactly as the daemon reads an
event-topic message, and :mod:`ilagent.mapping.replaying` plays what ilert would have seen per
alert source; :mod:`ilagent.commands.replay_report` prints it, integration keys masked.

Nothing is sent anywhere unless asked: ``--to URL`` sends the candidate's events, in order, to
an ilert-compatible API (a sandbox) — refused for ilert's own hosts unless ``--send`` is given
too; ``--send`` alone sends them to ``--ilert_api_url`` (the real ilert). ``--check`` exits 1
when the candidate and the baseline differ on any message.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from ilagent.commands.candidate import baseline, current
from ilagent.commands.common import (
    Parser,
    Subparsers,
    add_global_options,
    add_mapping_options,
    check_url,
    positive_seconds,
    topics,
)
from ilagent.commands.kafka_options import (
    add_connection_options,
    check_sasl,
    kafka_properties,
)
from ilagent.commands.replay_report import Replayed, write_json, write_text
from ilagent.commands.sources import Sources
from ilagent.config import DEFAULT_API_URL
from ilagent.errors import EXIT_FAILED, EXIT_OK, NotFoundError, UsageError
from ilagent.mapping.replaying import Outcome, differences, outcome_of, play
from ilagent.mapping.topics import Kind

DEFAULT_TIMEOUT = 60.0  # reaching the brokers and reading the whole range
ILERT_HOSTS = re.compile(r"(^|\.)ilert\.(com|eu|de)$")  # ilert's own API hosts


def add_parser(sub: Subparsers) -> Parser:
    """Add ``replay`` and its options."""
    replay: Parser = sub.add_parser(
        "replay", help="run a candidate config over a time range of a Kafka topic and show "
                       "what ilert would have seen, and the difference",
        description="Read the messages of the topics -e from --since to --until (assign only, "
                    "nothing committed), map them with the candidate config (the flags and "
                    "--config) and with the baseline (--against, else the flags without the "
                    "config file), and show per alert source the events, alerts opened, "
                    "resolved and still open, and each message the two treat differently. "
                    "Nothing is sent unless --to or --send is given.",
        epilog="example: ilagent replay --config new.toml --kafka_brokers kafka:9092 -e "
               "plant-alarms --since 24h --against running.toml --check")
    add_global_options(replay)
    replay.add_argument("-e", "--event_topic", action="append", default=[], metavar="TOPIC",
                        help="topic to replay (repeatable, comma-separated; names, not regexes)")
    replay.add_argument("--since", required=True, metavar="WHEN",
                        help="start of the range: a duration back from now (90s, 30m, 24h, 7d) "
                             "or a time (2024-05-01T08:00:00Z; UTC without a zone)")
    replay.add_argument("--until", metavar="WHEN",
                        help="end of the range, as --since (default: the end of each "
                             "partition when the read starts)")
    replay.add_argument("--against", metavar="OLD.toml",
                        help="compare with this config file's mapping settings and [[route]]s "
                             "(default: the same flags without any config file)")
    replay.add_argument("--check", action="store_true",
                        help="exit 1 when the candidate and the baseline differ on any message")
    replay.add_argument("--json", action="store_true", help="one JSON object instead of text")
    replay.add_argument("--timeout", type=positive_seconds, metavar="SECONDS",
                        help=f"for reaching the brokers and reading (default {DEFAULT_TIMEOUT:g})")
    sending = replay.add_argument_group("sending (nothing is sent without one of these)")
    sending.add_argument("--to", metavar="URL",
                         help="send the candidate's events, in order, to this ilert-compatible "
                              "API base URL, e.g. a sandbox's http://127.0.0.1:8080/api "
                              "(ilert's own hosts only with --send)")
    sending.add_argument("--send", action="store_true",
                         help="really send to ilert: to --to, else to --ilert_api_url")
    sending.add_argument("--ilert_api_url", metavar="URL", default=DEFAULT_API_URL,
                         help="ilert API base URL, with --send alone (env ILERT_API_URL; "
                              "default %(default)s)")
    add_connection_options(replay.add_argument_group("Kafka"))
    add_mapping_options(replay)
    return replay


def run(args: argparse.Namespace) -> int:
    """Replay the range and print the report; the exit code (see the module docstring)."""
    sources: Sources = getattr(args, "sources", None) or Sources()
    names = _topics(args)
    now = time.time()
    since, until = when(args.since, now=now, option="--since"), None
    if args.until is not None:
        until = when(args.until, now=now, option="--until")
        if until <= since:
            raise UsageError(f"--until {args.until} is not after --since {args.since}")
    destination = _destination(args)
    candidate = current(args, sources)
    base = baseline(args, sources, args.parser, args.against)
    if not args.kafka_brokers:
        raise UsageError("replay needs --kafka_brokers: the Kafka cluster to read")
    properties = kafka_properties(args, sources)
    check_sasl(properties)
    from ilagent.kafka.sample import read_range  # loads librdkafka

    rows: list[tuple[dict[str, Any], Outcome, Outcome]] = []
    for topic in names:
        try:
            messages = read_range(properties, brokers=args.kafka_brokers, topic=topic,
                                  since=since, until=until,
                                  timeout=args.timeout or DEFAULT_TIMEOUT)
        except NotFoundError as exc:  # a topic the user named: their mistake to fix
            raise UsageError(str(exc)) from None
        for m in messages:
            where = {"topic": m.topic, "partition": m.partition, "offset": m.offset,
                     "timestamp": m.timestamp}
            before, after = (outcome_of(config.read(Kind.EVENT, m.value, topic=m.topic,
                                                    message_key=m.key))
                             for config in (base, candidate))
            rows.append((where, before, after))
    replayed = Replayed(
        topics=names, since=since, until=until, candidate=candidate.name, baseline=base.name,
        candidate_book=play(after for _w, _b, after in rows),
        baseline_book=play(before for _w, before, _a in rows),
        differences=differences(rows))
    out = sys.stdout
    if destination is not None:
        from ilagent.commands.replay_send import send_all  # the HTTP client: only when sending

        replayed.sending = asyncio.run(send_all(
            [sent for _w, _b, after in rows for sent in after.sent], api_url=destination))
    (write_json if args.json else write_text)(replayed, out)
    failed = replayed.sending is not None and not replayed.sending.complete
    return EXIT_FAILED if failed or (args.check and replayed.differences) else EXIT_OK


def when(text: str, *, now: float, option: str) -> int:
    """``--since``/``--until`` as ms since the epoch: a duration back from ``now`` (s) or an
    ISO 8601 time (UTC when it names no zone); ``UsageError`` otherwise."""
    from ilagent.journal.entries import parse_since  # the one reading of durations

    if text.strip()[-1:].isalpha():  # a bare number is no time here: seconds, or hours?
        with contextlib.suppress(ValueError):
            return int((now - parse_since(text)) * 1000)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{option} {text!r} is neither a duration (90s, 30m, 24h, 7d) nor a "
                         "time (2024-05-01T08:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _topics(args: argparse.Namespace) -> tuple[str, ...]:
    names = topics(args.event_topic)
    if not names:
        raise UsageError("replay needs -e/--event_topic: the topic to read")
    pattern = next((name for name in names if name.startswith("^")), None)
    if pattern is not None:
        raise UsageError(f"replay reads topics by their names, not {pattern}")
    return names


def _destination(args: argparse.Namespace) -> str | None:
    """Where the candidate's events go: None (nowhere), ``--to`` or, with ``--send`` alone,
    ``--ilert_api_url``; ``UsageError`` for ilert itself without ``--send``."""
    url: str | None = args.to or (args.ilert_api_url if args.send else None)
    if url is None:
        return None
    option = "--to" if args.to else "--ilert_api_url"
    check_url(url, option)
    if ILERT_HOSTS.search((urlsplit(url).hostname or "").lower()) and not args.send:
        raise UsageError(f"--to {url} is ilert itself: replayed events would page people; "
                         "add --send if that is what you want, or give a sandbox's URL")
    return url.rstrip("/")
