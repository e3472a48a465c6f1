"""``ilagent map``: a dry run of the mapping flags over messages given line by line, or over the
newest messages of a Kafka topic (``--last N``).

Each message goes through the same :func:`ilagent.mapping.messages.map_message` the daemon uses (with
``--policy``, :func:`ilagent.mapping.policy.map_policy` and the three ilert calls it would make), and
the outcome is printed as one JSON object per line; nothing is sent anywhere. The printed URL and
event show the integration key in clear: this is a local dry run the user asked for, on their
own input, and the point of it is to see exactly what would be posted where.

Where the messages come from is kept apart from mapping them: each source yields
:class:`Sample` items, and :func:`map_samples` (or :func:`policy_samples`) maps and prints them. A
line of FILE or stdin is printed with ``"line"`` (its 1-based number, blank lines counted); a
message read with ``--last`` with ``"topic"``, ``"partition"`` and ``"offset"`` instead, oldest
first. ``--last`` reads through :mod:`ilagent.kafka.sample` (assign only, nothing committed),
imported only then: without it ``map`` never loads librdkafka.
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
    more_than_zero,
    policy_rules,
    positive_seconds,
    routes_of,
)
from ilagent.commands.kafka_options import (
    CONNECTION,
    add_connection_options,
    check_sasl,
    kafka_properties,
)
from ilagent.commands.map_routes import Sample, route_samples
from ilagent.commands.sources import Sources
from ilagent.config import DEFAULT_API_URL, PolicyRules
from ilagent.errors import NotFoundError, UsageError
from ilagent.mapping.messages import Dropped, Mapped, MappingRules, map_message
from ilagent.mapping.policy import map_policy
from ilagent.spool.checks import SQLITE_HEADER

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_DROPPED = 1  # with --check: at least one message would not become an event
DEFAULT_TOPIC = "test-topic"  # the topic lines are taken to come from
DEFAULT_TIMEOUT = 10.0  # --last: for reaching the brokers and reading (kafka.sample's default)
MAX_LAST = 100_000  # --last: messages held in memory and printed at most


def add_parser(sub: Subparsers) -> Parser:
    """Add ``map`` and its options."""
    mapper: Parser = sub.add_parser(
        "map", help="dry-run the mapping flags on messages (a file, stdin or a Kafka topic)",
        description="Show, for each message (one JSON object per line, or the newest N of a "
                    "Kafka topic with --last), the event and URL the daemon would post, or why "
                    "it would drop it; nothing is sent.",
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
    mapper.add_argument("-e", "--event_topic", metavar="TOPIC",
                        help=f"topic name used in the default summary (default {DEFAULT_TOPIC}); "
                             "with --last, the Kafka topic to read")
    mapper.add_argument("--message_key", help="Kafka message key to assume")
    mapper.add_argument("--check", action="store_true",
                        help="exit 1 if any message would be dropped or misses a mapped field")
    mapper.add_argument("--ilert_api_url", default=DEFAULT_API_URL,
                        metavar="URL", help="API base URL shown in the output")
    mapper.add_argument("--source", choices=("kafka", "mqtt"), default="kafka",
                        help="with [[route]]s in the config file: the source the messages are "
                             "taken to come from (routes read Kafka topics and MQTT filters "
                             "apart; default %(default)s)")
    mapper.add_argument("--policy", action="store_true",
                        help="read the messages as escalation-policy updates (--policy_topic) "
                             "and print the three calls each would make")
    kafka = mapper.add_argument_group(
        "Kafka (--last: the newest messages of a topic instead of FILE or stdin)")
    kafka.add_argument("--last", type=more_than_zero, metavar="N",
                       help="map the newest N messages of the topic -e, read from the brokers "
                            f"--kafka_brokers (at most {MAX_LAST}; oldest first; no consumer "
                            "group is joined "
                            "or committed)")
    kafka.add_argument("--timeout", type=positive_seconds, metavar="SECONDS",
                       help="with --last: how long reaching the brokers and reading may take "
                            f"(default {DEFAULT_TIMEOUT:g})")
    add_connection_options(kafka)
    add_mapping_options(mapper)
    add_policy_options(mapper)
    return mapper


def run(args: argparse.Namespace) -> int:
    """Map the messages of FILE, stdin or (``--last``) a Kafka topic; return the exit code."""
    path = args.input_file or args.input_file_option
    for spool in (args.sub_db_file, args.db_file):
        if spool and not _may_be_sqlite(spool):
            raise UsageError(f"-f is the daemon's spool file, and {spool} is not SQLite: give "
                             f"the messages as FILE (ilagent map … {spool})")
    sources = getattr(args, "sources", None) or Sources()
    _check_kafka_options(args, sources, path=path)
    args.routes = routes_of(args, sources)
    if args.routes and args.policy:
        raise UsageError(f"--policy maps policy messages; the [[route]]s of "
                         f"{sources.config_file} map events: give one of them")
    if args.last is not None and args.source != "kafka":
        raise UsageError("--last reads Kafka: --source mqtt does not go with it")
    if args.last is not None:
        rules = _rules(args)  # checked before the brokers are asked
        samples = _Counting(_topic_samples(args, sources))
        code = _map_and_print(args, samples, rules=rules)
        where = f"the topic {args.event_topic}"
    else:
        if args.input_file_option:
            logger.warning("map --file is deprecated: give the messages as FILE (ilagent map … "
                           "%s)", args.input_file_option)
        with _open_input(path) as source:
            key = None if args.message_key is None else _to_bytes(args.message_key)
            samples = _Counting(line_samples(source, topic=args.event_topic or DEFAULT_TOPIC,
                                             message_key=key))
            code = _map_and_print(args, samples, rules=_rules(args))
        where = f"the input ({path or 'stdin'})"
    if args.check and not samples.count:  # a CI check of an empty file checks nothing
        raise NotFoundError(f"no message to check: {where} holds none")
    return code


def _rules(args: argparse.Namespace) -> tuple[PolicyRules | None, MappingRules]:
    """The policy rules (with ``--policy``) and the mapping rules; raises ``ConfigError``."""
    policy = policy_rules(args) if args.policy else None
    return policy, mapping_rules(args)


def _map_and_print(args: argparse.Namespace, samples: Iterable[Sample], *,
                   rules: tuple[PolicyRules | None, MappingRules]) -> int:
    api_url = args.ilert_api_url.rstrip("/")
    policy, mapping = rules
    if args.routes:
        return route_samples(args.routes, samples, source=args.source,
                             default_key=mapping.event_key, api_url=api_url, check=args.check,
                             out=sys.stdout)
    if policy is not None:
        return policy_samples(policy, mapping, samples, api_url=api_url, check=args.check,
                              out=sys.stdout)
    return map_samples(mapping, samples, api_url=api_url, check=args.check, out=sys.stdout)


def _check_kafka_options(args: argparse.Namespace, sources: Sources, *, path: str | None) -> None:
    """``--last`` and the Kafka options only together, and ``--last`` without FILE: usage
    errors before anything is read."""
    if args.last is None:
        given = [n for n in CONNECTION if sources.of.get(n) == "flag"]
        given += ["timeout"] if args.timeout is not None else []
        if given:
            raise UsageError(f"--{given[0]} needs --last (without it map reads FILE or stdin)")
        return
    if path:
        raise UsageError(f"--last reads the topic -e from Kafka, not {path}: give one of them")
    if not args.kafka_brokers:
        raise UsageError("--last needs --kafka_brokers: the Kafka cluster to read")
    if not args.event_topic:
        raise UsageError("--last needs -e/--event_topic: the topic to read")
    if args.event_topic.startswith("^") or "," in args.event_topic:
        raise UsageError(f"--last reads one topic by its name, not {args.event_topic}")
    if args.message_key is not None:
        raise UsageError("--message_key is the key of lines from FILE or stdin: with --last "
                         "each message has its own")
    if args.last > MAX_LAST:
        raise UsageError(f"--last {args.last}: at most {MAX_LAST} messages")


def _topic_samples(args: argparse.Namespace, sources: Sources) -> list[Sample]:
    """The newest ``--last`` messages of the topic ``-e``, as samples, oldest first."""
    properties = kafka_properties(args, sources)
    check_sasl(properties)
    from ilagent.kafka.sample import read_last  # loads librdkafka: only for --last

    messages = read_last(properties, brokers=args.kafka_brokers, topic=args.event_topic,
                         count=args.last, timeout=args.timeout or DEFAULT_TIMEOUT)
    return [Sample(m.value, m.topic, m.key,
                   {"topic": m.topic, "partition": m.partition, "offset": m.offset})
            for m in messages]


class _Counting:
    """The samples, counting them as they go by."""

    def __init__(self, samples: Iterable[Sample]) -> None:
        self._samples = samples
        self.count = 0

    def __iter__(self) -> Iterator[Sample]:
        for sample in self._samples:
            self.count += 1
            yield sample


def line_samples(lines: Iterable[str], *, topic: str,
                 message_key: bytes | None = None) -> Iterator[Sample]:
    """Each non-blank line as one message, numbered by its line (blank lines counted)."""
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield Sample(_to_bytes(line.rstrip("\r\n")), topic, message_key, {"line": number})


def map_samples(rules: MappingRules, samples: Iterable[Sample], *, api_url: str, check: bool,
                out: TextIO) -> int:
    """Map each sample and write one JSON result per line to ``out``, ``where`` first.

    Returns ``EXIT_DROPPED`` when ``check`` is set and any message was dropped (filtered ones
    too) or misses a mapped field, else ``EXIT_OK``.
    """
    base_url = api_url.rstrip("/")
    any_dropped = False
    for sample in samples:
        result = map_message(rules, sample.payload, topic=sample.topic,
                             message_key=sample.message_key)
        any_dropped = any_dropped or isinstance(result, Dropped) or bool(
            isinstance(result, Mapped) and result.missing)
        report = _report(sample.where, result, base_url=base_url)
        out.write(json.dumps(report, ensure_ascii=False) + "\n")
    return EXIT_DROPPED if check and any_dropped else EXIT_OK


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
    as :func:`map_samples`.
    """
    key = None if message_key is None else _to_bytes(message_key)
    return map_samples(rules, line_samples(lines, topic=topic, message_key=key),
                       api_url=api_url, check=check, out=out)


def policy_samples(rules: PolicyRules, filters: MappingRules, samples: Iterable[Sample], *,
                   api_url: str, check: bool, out: TextIO) -> int:
    """For each sample, the three ilert calls the policy message would make (or why it makes
    none), one JSON result per line; like :func:`map_samples` otherwise (a warning fails
    ``check`` as a drop does)."""
    any_dropped = False
    for sample in samples:
        update = map_policy(rules, filters, sample.payload)
        report: dict[str, Any] = dict(sample.where)
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


def run_policy(rules: PolicyRules, filters: MappingRules, lines: Iterable[str], *, api_url: str,
               check: bool, out: TextIO) -> int:
    """:func:`policy_samples` over each non-blank line."""
    return policy_samples(rules, filters, line_samples(lines, topic=DEFAULT_TOPIC),
                          api_url=api_url, check=check, out=out)


def _report(where: dict[str, Any], result: Mapped | Dropped, *, base_url: str) -> dict[str, Any]:
    """The printed form of one message's outcome."""
    report: dict[str, Any] = dict(where)
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
