"""The command line: options and environment variables → config objects. No logic beyond that.

Compatible with ilagent 0.9: the same subcommands and long options with their underscore
spelling (``--kafka_brokers``); each also accepts the dashed spelling (``--kafka-brokers``).
A usage error is one line on stderr and exit code 2; no traceback reaches the user.
Differences on purpose: ``-e``/``-r`` may be repeated for several topics (ilagent refuses a
repeated option), and ``daemon`` with nothing to run is a usage error instead of a silent exit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from ilagent import __version__
from ilagent.backoff import RetryPolicy
from ilagent.config import (
    DEFAULT_DB_FILE,
    DEFAULT_HTTP_HOST,
    DEFAULT_HTTP_MAX_BODY,
    DEFAULT_KAFKA_MAX_RETRIES,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_QUEUE_MAX_RETRIES,
    DEFAULT_RATE_LIMIT_PER_KEY,
    DEFAULT_RATE_LIMIT_TOTAL,
    DEFAULT_SHUTDOWN_TIMEOUT,
    ConfigError,
    DaemonConfig,
    HttpSettings,
    IlertSettings,
)
from ilagent.ilert import DEFAULT_API_URL, DEFAULT_BEAT_URL
from ilagent.kafka import KafkaSettings
from ilagent.mapping import MappingRules

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors and dashed aliases for every underscore option."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")

    def add_argument(self, *names: Any, **kwargs: Any) -> argparse.Action:
        return super().add_argument(*names, *_dashed(names), **kwargs)

    def add_argument_group(self, *args: Any, **kwargs: Any) -> Any:
        group = super().add_argument_group(*args, **kwargs)
        add = group.add_argument
        group.add_argument = lambda *names, **kw: add(*names, *_dashed(names), **kw)  # type: ignore[method-assign]
        return group


def _dashed(names: Sequence[Any]) -> list[str]:
    """The dashed spelling of each underscore long option (``--kafka_brokers`` → ``--kafka-brokers``)."""
    return [n.replace("_", "-") for n in names
            if isinstance(n, str) and n.startswith("--") and "_" in n]


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name) or default


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _port(text: str) -> int:
    value = _positive_int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port")
    return value


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key.strip(), value


def _add_ilert_options(parser: Parser) -> None:
    group = parser.add_argument_group("ilert")
    group.add_argument("--ilert_api_url", metavar="URL",
                       default=_env("ILERT_API_URL", DEFAULT_API_URL),
                       help="ilert API base URL (env ILERT_API_URL; default %(default)s)")
    group.add_argument("--ilert_beat_url", metavar="URL",
                       default=_env("ILERT_BEAT_URL", DEFAULT_BEAT_URL),
                       help="ilert heartbeat ping base URL (env ILERT_BEAT_URL; default %(default)s)")
    group.add_argument("--ilert_timeout", metavar="SECONDS", type=_seconds, default=25.0,
                       help="timeout of one request to ilert (default %(default)s)")


def _add_mapping_options(parser: Parser) -> None:
    group = parser.add_argument_group("mapping and filtering (ilagent 0.9 rules)")
    group.add_argument("--event_key", metavar="KEY",
                       help="use this integration key for every event")
    group.add_argument("--map_key_etype", metavar="PATH",
                       help="payload field (dot path) holding the event type")
    group.add_argument("--map_key_alert_key", metavar="PATH",
                       help="payload field (dot path) holding the alert key")
    group.add_argument("--map_key_summary", metavar="PATH",
                       help="payload field (dot path) holding the summary")
    group.add_argument("--map_val_etype_alert", metavar="VALUE",
                       help="event-type value that means ALERT")
    group.add_argument("--map_val_etype_accept", metavar="VALUE",
                       help="event-type value that means ACCEPT")
    group.add_argument("--map_val_etype_resolve", metavar="VALUE",
                       help="event-type value that means RESOLVE")
    group.add_argument("--filter_key", metavar="KEY",
                       help="only messages with this top-level key are sent")
    group.add_argument("--filter_val", metavar="VALUE",
                       help="with --filter_key: only messages whose key has this string value")
    group.add_argument("--forward_message_payload", action="store_true",
                       help="send the whole message as customDetails")


def _rules(args: argparse.Namespace) -> MappingRules:
    return MappingRules(
        event_key=args.event_key, map_key_etype=args.map_key_etype,
        map_key_alert_key=args.map_key_alert_key, map_key_summary=args.map_key_summary,
        map_val_etype_alert=args.map_val_etype_alert,
        map_val_etype_accept=args.map_val_etype_accept,
        map_val_etype_resolve=args.map_val_etype_resolve, filter_key=args.filter_key,
        filter_val=args.filter_val, forward_message_payload=args.forward_message_payload)


def _add_global_options(parser: Parser) -> None:
    """-v and -f are global in ilagent, so they may also follow the subcommand."""
    parser.add_argument("-v", "--verbose", action="count", dest="sub_verbose", default=0,
                        help=argparse.SUPPRESS)
    parser.add_argument("-f", "--file", dest="sub_db_file", help=argparse.SUPPRESS)


def build_parser() -> Parser:
    """The whole command line."""
    parser = Parser(prog="ilagent", description="Bridge Kafka and HTTP to ilert alerts.")
    parser.add_argument("-V", "--version", action="version", version=f"ilagent {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more logging: -vv info, -vvv debug (default: warnings)")
    parser.add_argument("-f", "--file", dest="db_file", metavar="FILE",
                        help="SQLite file of the daemon's queue (default ./ilagent.db3)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    daemon = sub.add_parser("daemon", help="run the bridge: Kafka consumer, HTTP server, heartbeat")
    _add_global_options(daemon)
    daemon.add_argument("-p", "--port", type=_port, help="serve HTTP on this port")
    daemon.add_argument("--http_host", default=DEFAULT_HTTP_HOST,
                        help="address the HTTP server binds (default %(default)s)")
    daemon.add_argument("--http_token", default=_env("ILAGENT_HTTP_TOKEN"),
                        help="require 'Authorization: Bearer TOKEN' on all routes but /health "
                             "and /ready (env ILAGENT_HTTP_TOKEN)")
    daemon.add_argument("--http_max_body", type=_positive_int, default=DEFAULT_HTTP_MAX_BODY,
                        metavar="BYTES", help="largest request body (default %(default)s)")
    daemon.add_argument("-b", "--heartbeat", metavar="KEY",
                        help="ping this heartbeat every 30 s while the daemon is ready")
    kafka = daemon.add_argument_group("Kafka")
    kafka.add_argument("--kafka_brokers", metavar="HOST:PORT[,…]", help="bootstrap brokers")
    kafka.add_argument("--kafka_group_id", default="ilagent",
                       help="consumer group (default %(default)s)")
    kafka.add_argument("-e", "--event_topic", action="append", default=[], metavar="TOPIC",
                       help="topic of event messages (repeatable)")
    kafka.add_argument("-r", "--heartbeat_topic", action="append", default=[], metavar="TOPIC",
                       help='topic of heartbeat messages {"integrationKey": …} (repeatable)')
    kafka.add_argument("--kafka_config", action="append", type=_key_value, default=[],
                       metavar="KEY=VALUE",
                       help="librdkafka property, e.g. security.protocol=SASL_SSL (repeatable)")
    kafka.add_argument("--kafka_offset_reset", choices=("earliest", "latest"), default="latest",
                       help="where a new group starts (default %(default)s)")
    kafka.add_argument("--dlq_topic", metavar="TOPIC",
                       help="write undeliverable messages here, with reason headers")
    _add_mapping_options(daemon)
    delivery = daemon.add_argument_group("delivery")
    delivery.add_argument("--max_in_flight", type=_positive_int, default=DEFAULT_MAX_IN_FLIGHT,
                          help="concurrent requests to ilert (default %(default)s)")
    delivery.add_argument("--max_retries", type=_positive_int, default=None,
                          help="give up after this many retries, 0 = never (default: never "
                               "for Kafka, {DEFAULT_QUEUE_MAX_RETRIES} for the HTTP queue)")
    delivery.add_argument("--rate_limit_per_key", type=_positive_int,
                          default=DEFAULT_RATE_LIMIT_PER_KEY,
                          help="events per minute per integration key (0 = off; "
                               "default %(default)s)")
    delivery.add_argument("--rate_limit_total", type=_positive_int,
                          default=DEFAULT_RATE_LIMIT_TOTAL,
                          help="events per minute in total (0 = off; default %(default)s)")
    delivery.add_argument("--retry_initial_delay", type=_seconds, default=1.0, metavar="SECONDS",
                          help="first retry delay before jitter (default %(default)s)")
    delivery.add_argument("--retry_max_delay", type=_seconds, default=60.0, metavar="SECONDS",
                          help="largest retry delay (default %(default)s)")
    delivery.add_argument("--rate_limit_delay", type=_seconds, default=10.0, metavar="SECONDS",
                          help="least wait after a 429 without Retry-After "
                               "(default %(default)s)")
    delivery.add_argument("--shutdown_timeout", type=_seconds, default=DEFAULT_SHUTDOWN_TIMEOUT,
                          metavar="SECONDS",
                          help="how long in-flight deliveries may finish at shutdown "
                               "(default %(default)s)")
    _add_ilert_options(daemon)

    event = sub.add_parser("event", help="send one event to ilert")
    _add_global_options(event)
    event.add_argument("-k", "--integration_key",
                       help="integration key (default: env ILERT_INTEGRATION_KEY)")
    event.add_argument("-t", "--event_type", required=True,
                       choices=("ALERT", "ACCEPT", "RESOLVE", "COMMENT"))
    event.add_argument("-s", "--summary", help="summary (required for ALERT)")
    event.add_argument("-i", "--alert_key", help="alert key")
    event.add_argument("-o", "--priority", choices=("LOW", "HIGH"))
    event.add_argument("-d", "--details", help="details")
    event.add_argument("-g", "--image", help="image URL")
    event.add_argument("-l", "--link", help="link URL")
    event.add_argument("--retries", type=_positive_int, default=2,
                       help="retries on network errors, 429 and 5xx (default %(default)s)")
    _add_ilert_options(event)

    heartbeat = sub.add_parser("heartbeat", help="send one heartbeat ping to ilert")
    _add_global_options(heartbeat)
    heartbeat.add_argument("-k", "--integration_key",
                           help="heartbeat key (default: env ILERT_INTEGRATION_KEY)")
    heartbeat.add_argument("--retries", type=_positive_int, default=2,
                           help="retries on network errors, 429 and 5xx (default %(default)s)")
    _add_ilert_options(heartbeat)

    _add_queue_command(sub)

    mapper = sub.add_parser("map", help="dry-run the mapping flags on messages (stdin or --file)")
    mapper.add_argument("--file", dest="input_file", metavar="FILE",
                        help="messages, one per line (default: stdin)")
    mapper.add_argument("-e", "--event_topic", default="test-topic", metavar="TOPIC",
                        help="topic name used in the default summary (default %(default)s)")
    mapper.add_argument("--message_key", help="Kafka message key to assume")
    mapper.add_argument("--check", action="store_true",
                        help="exit 1 if any message would be dropped")
    mapper.add_argument("--ilert_api_url", default=_env("ILERT_API_URL", DEFAULT_API_URL),
                        metavar="URL", help="API base URL shown in the output")
    _add_mapping_options(mapper)

    sandbox = sub.add_parser("sandbox", help="run a local ilert stand-in with a web page")
    sandbox.add_argument("--port", type=_port, default=8080,
                         help="port (default %(default)s)")
    sandbox.add_argument("--host", default="127.0.0.1", help="address (default %(default)s)")
    sandbox.add_argument("--db", metavar="FILE", help="keep state in this SQLite file")
    sandbox.add_argument("--rate_limit", action="store_true",
                         help="answer 429 like ilert beyond 50 events/min per key")
    return parser


def _add_queue_command(sub: Any) -> None:
    queue = sub.add_parser("queue", help="inspect and manage the HTTP queue's SQLite file")
    # -v/-f go on each action only: a nested parser would reset them to their defaults
    actions = queue.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser,
                                   required=True)
    listing = actions.add_parser("list", help="show queued events and dead letters (keys masked)")
    _add_global_options(listing)
    listing.add_argument("--limit", type=_positive_int, default=100,
                         help="rows per table (default %(default)s)")
    listing.add_argument("--json", action="store_true", help="one JSON object per row")
    retry = actions.add_parser("retry", help="move dead letters back to the queue")
    _add_global_options(retry)
    retry.add_argument("ids", nargs="*", type=_positive_int, metavar="ID",
                       help="dead letters to retry")
    retry.add_argument("--all", action="store_true", help="retry every dead letter")
    purge = actions.add_parser("purge", help="delete every queued event or every dead letter")
    _add_global_options(purge)
    purge.add_argument("table", choices=("queue", "dead_letters"))
    purge.add_argument("--yes", action="store_true", help="confirm the deletion")


def daemon_config(args: argparse.Namespace) -> DaemonConfig:
    """The daemon's configuration from parsed arguments."""
    kafka = None
    if args.kafka_brokers:
        kafka = KafkaSettings(
            brokers=args.kafka_brokers, group_id=args.kafka_group_id,
            event_topics=tuple(args.event_topic), heartbeat_topics=tuple(args.heartbeat_topic),
            offset_reset=args.kafka_offset_reset, extra=tuple(args.kafka_config),
            dlq_topic=args.dlq_topic, revoke_timeout=args.shutdown_timeout)
    http = None
    if args.port is not None:
        http = HttpSettings(port=args.port, host=args.http_host, token=args.http_token,
                            max_body=args.http_max_body)
    given = args.max_retries  # None: each source keeps its own default
    config = DaemonConfig(
        ilert=IlertSettings(api_url=args.ilert_api_url, beat_url=args.ilert_beat_url,
                            timeout=args.ilert_timeout),
        retry=RetryPolicy(initial_delay=args.retry_initial_delay,
                          max_delay=max(args.retry_max_delay, args.retry_initial_delay),
                          rate_limit_delay=args.rate_limit_delay,
                          max_retries=DEFAULT_KAFKA_MAX_RETRIES if given is None else given),
        queue_max_retries=DEFAULT_QUEUE_MAX_RETRIES if given is None else given,
        max_in_flight=args.max_in_flight, rate_limit_per_key=args.rate_limit_per_key,
        rate_limit_total=args.rate_limit_total, shutdown_timeout=args.shutdown_timeout,
        http=http, kafka=kafka, rules=_rules(args), heartbeat_key=args.heartbeat,
        db_file=db_file(args))
    config.validate()
    return config


def db_file(args: argparse.Namespace) -> str:
    """The SQLite file: ``-f`` after the subcommand, else before it, else the default."""
    return str(getattr(args, "sub_db_file", None) or args.db_file or DEFAULT_DB_FILE)


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
        if args.command == "daemon":
            from ilagent import daemon

            return daemon.run(daemon_config(args))
        if args.command in ("event", "heartbeat"):
            from ilagent import oneshot

            return asyncio.run(oneshot.run(args))
        if args.command == "map":
            return _run_map(args)
        if args.command == "sandbox":
            return _run_sandbox(args)
        if args.command == "queue":
            from ilagent.queuecmd import run_queue

            return run_queue(args, db_file(args))
    except ConfigError as exc:
        parser.exit(EXIT_USAGE, f"ilagent {args.command}: error: {exc}\n")
    except KeyboardInterrupt:
        return 130
    raise AssertionError(f"unhandled command {args.command}")


def _run_map(args: argparse.Namespace) -> int:
    from ilagent.mapcmd import run_map

    try:
        source = open(args.input_file, encoding="utf-8") if args.input_file else sys.stdin  # noqa: SIM115
    except OSError as exc:
        raise ConfigError(f"cannot read {args.input_file}: {exc.strerror}") from None
    with source:
        return run_map(_rules(args), source, topic=args.event_topic,
                       api_url=args.ilert_api_url.rstrip("/"), check=args.check,
                       out=sys.stdout, message_key=args.message_key)


def _run_sandbox(args: argparse.Namespace) -> int:
    from ilagent.sandbox import SandboxConfig, serve

    config = SandboxConfig(host=args.host, port=args.port, db_path=args.db,
                           rate_limit=args.rate_limit)
    try:
        asyncio.run(serve(config))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return 0
