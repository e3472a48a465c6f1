"""``ilagent daemon``: its options, and the :class:`~ilagent.config.DaemonConfig` they describe.

Differences from ilagent 0.9 on purpose: ``-e``/``-r`` may be repeated for several topics
(ilagent refuses a repeated option), and ``daemon`` with nothing to run is a usage error
instead of a silent exit.
"""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

from ilagent.commands import drill_options, spool_options
from ilagent.commands.common import (
    ROUTE_REPLACES,
    Parser,
    Subparsers,
    add_global_options,
    add_ilert_options,
    add_mapping_options,
    add_policy_options,
    address_list,
    byte_size,
    check_url,
    db_file,
    mapping_rules,
    more_than_zero,
    networks,
    policy_rules,
    port,
    positive_int,
    positive_seconds,
    routes_of,
    seconds,
    topics,
)
from ilagent.commands.fallback_options import add_fallback_options, fallback_settings
from ilagent.commands.kafka_options import (
    KAFKA_ONLY,
    add_connection_options,
    check_sasl,
    kafka_properties,
)
from ilagent.commands.mqtt_options import MQTT_ONLY, add_mqtt_options, mqtt_settings
from ilagent.commands.sources import Sources
from ilagent.config import (
    DEFAULT_CIRCUIT_FAILURES,
    DEFAULT_CIRCUIT_PROBE_INTERVAL,
    DEFAULT_HTTP_HOST,
    DEFAULT_HTTP_MAX_BODY,
    DEFAULT_HTTP_RATE_LIMIT,
    DEFAULT_JOURNAL_MAX_MB,
    DEFAULT_KAFKA_GROUP_ID,
    DEFAULT_MAX_BUFFERED,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RATE_LIMIT_PER_KEY,
    DEFAULT_RATE_LIMIT_TOTAL,
    DEFAULT_SHUTDOWN_TIMEOUT,
    DEFAULT_STUCK_AFTER,
    DaemonConfig,
    HttpSettings,
    IlertSettings,
    KafkaSettings,
    RetryPolicy,
    default_journal,
)
from ilagent.errors import ConfigError

if TYPE_CHECKING:
    from ilagent.mapping.routes import Route


def add_parser(sub: Subparsers) -> Parser:
    """Add ``daemon`` and its options."""
    daemon: Parser = sub.add_parser(
        "daemon", help="run the bridge: Kafka and MQTT consumers, HTTP server, heartbeat",
        description="Deliver Kafka and MQTT messages and events posted to its HTTP intake to "
                    "ilert: "
                    "at least once, in order per alert, paced for ilert's limits.",
        epilog="example: ilagent daemon -p 8977 --kafka_brokers localhost:9092 "
               "--kafka_group_id ilagentsub -e test-topic --event_key il1api… "
               "--map_key_alert_key mCode --map_key_summary comment --map_key_etype state "
               "--map_val_etype_alert SET --map_val_etype_resolve CLR")
    add_global_options(daemon)
    add_options(daemon)
    return daemon


def add_options(daemon: Parser) -> None:
    """The options of ``daemon`` (also taken by ``config show``)."""
    daemon.add_argument("-p", "--port", type=port, help="serve HTTP on this port")
    daemon.add_argument("--http_host", default=DEFAULT_HTTP_HOST,
                        help="address the HTTP server binds (default %(default)s)")
    daemon.add_argument("--http_token", action="append", default=[], metavar="TOKEN",
                        help="require 'Authorization: Bearer TOKEN' on all routes but /health "
                             "and /ready; repeatable: each is valid, for rotation (env "
                             "ILAGENT_HTTP_TOKEN, comma-separated)")
    daemon.add_argument("--http_token_file", metavar="FILE",
                        help="valid bearer tokens, one a line ('#' lines ignored), read again "
                             "every 10 s: a mounted secret can be rotated without a restart")
    daemon.add_argument("--http_allow", action="append", default=[], type=address_list,
                        metavar="CIDR[,…]",
                        help="only these addresses or networks may use the API (repeatable, "
                             "comma-separated); default: loopback only without a token, any "
                             "address with one; 0.0.0.0/0,::/0: everyone, as ilagent 0.9")
    daemon.add_argument("--http_rate_limit", type=positive_int, default=DEFAULT_HTTP_RATE_LIMIT,
                        metavar="N",
                        help="requests a minute per client address (IPv6: per /64), bursts of "
                             "N/6; above it 429 with Retry-After; X-Forwarded-For is never "
                             "trusted; 0 = off (default %(default)s)")
    daemon.add_argument("--http_max_body", type=more_than_zero, default=DEFAULT_HTTP_MAX_BODY,
                        metavar="BYTES", help="largest request body (default %(default)s)")
    daemon.add_argument("--spool_max_bytes", type=byte_size, metavar="BYTES",
                        help="what the rows of the spool file (-f) may hold, e.g. 512M; when "
                             "full the intake answers 503 QUEUE_FULL and MQTT's buffer holds "
                             "its acknowledgements (default 1G, or half the free space at "
                             "start when less)")
    spool_options.add(daemon)
    daemon.add_argument("--intake", type=str.lower, choices=("on", "off"), default="on",
                        help="with -p: 'on' also takes events and heartbeats (into the spool "
                             "file -f), 'off' serves only /health, /ready and /metrics "
                             "(default %(default)s)")
    daemon.add_argument("--journal", metavar="PATH|off",
                        help="keep what happened to each event sent or dead-lettered (for "
                             "`ilagent trace` and /trace) in this SQLite file; 'off': none "
                             "(default: beside the spool file, -f + '.journal.db', when the "
                             "daemon has one; else off)")
    daemon.add_argument("--journal_max_mb", type=more_than_zero, default=DEFAULT_JOURNAL_MAX_MB,
                        metavar="MB",
                        help="the journal's size: beyond it the oldest events are dropped "
                             "(default %(default)s)")
    daemon.add_argument("-b", "--heartbeat", metavar="KEY",
                        help="ping this heartbeat once the daemon is ready, then every 30 s "
                             "while it stays ready")
    topic = daemon.add_argument_group("topics (Kafka and MQTT)")
    topic.add_argument("-e", "--event_topic", action="append", default=[], metavar="TOPIC",
                       help="topic of event messages: repeatable, comma-separated; Kafka: a "
                            "regex starting with ^; MQTT: a filter with + and #")
    topic.add_argument("-r", "--heartbeat_topic", action="append", default=[], metavar="TOPIC",
                       help='topic of heartbeat messages {"integrationKey": …}: as --event_topic')
    topic.add_argument("--policy_topic", action="append", default=[], metavar="TOPIC",
                       help="topic of escalation-policy updates (\"who is on shift N\"): as "
                            "--event_topic; needs ILERT_API_KEY and --policy_routing_keys")
    kafka = daemon.add_argument_group("Kafka")
    add_connection_options(kafka)
    kafka.add_argument("--kafka_group_id", default=DEFAULT_KAFKA_GROUP_ID,
                       help="consumer group (default %(default)s)")
    kafka.add_argument("--kafka_connect_timeout", type=seconds, default=0.0, metavar="SECONDS",
                       help="exit 2 when the brokers cannot be reached at start within this "
                            "long (default 0: wait for them)")
    kafka.add_argument("--kafka_offset_reset", choices=("earliest", "latest"), default="latest",
                       help="where a new group starts (default %(default)s; with earliest, "
                            "see --max_event_age)")
    kafka.add_argument("--dlq_topic", metavar="TOPIC",
                       help="write undeliverable messages here, with reason headers")
    kafka.add_argument("--max_buffered", type=more_than_zero, default=DEFAULT_MAX_BUFFERED,
                       metavar="N",
                       help="messages of one partition waiting for ilert before it is paused "
                            "(default %(default)s)"),
    add_mqtt_options(daemon)
    add_mapping_options(daemon)
    add_policy_options(daemon)
    drill_options.add(daemon)
    delivery = daemon.add_argument_group("delivery")
    delivery.add_argument("--max_in_flight", type=more_than_zero, default=DEFAULT_MAX_IN_FLIGHT,
                          help="concurrent requests to ilert (default %(default)s)")
    delivery.add_argument("--max_retries", type=positive_int, default=DEFAULT_MAX_RETRIES,
                          help="dead-letter an event after this many failed attempts (429s do "
                               "not count); 0 = never (default)")
    delivery.add_argument("--rate_limit_per_key", type=positive_int,
                          default=DEFAULT_RATE_LIMIT_PER_KEY,
                          help="events per minute per integration key (0 = off; "
                               "default %(default)s)")
    delivery.add_argument("--rate_limit_total", type=positive_int,
                          default=DEFAULT_RATE_LIMIT_TOTAL,
                          help="events per minute in total (0 = off; default %(default)s)")
    delivery.add_argument("--retry_initial_delay", type=positive_seconds, default=1.0,
                          metavar="SECONDS",
                          help="first retry delay before jitter (default %(default)s)")
    delivery.add_argument("--retry_max_delay", type=positive_seconds, default=60.0,
                          metavar="SECONDS",
                          help="largest retry delay (default %(default)s)")
    delivery.add_argument("--rate_limit_delay", type=positive_seconds, default=10.0,
                          metavar="SECONDS",
                          help="least wait after a 429 without Retry-After "
                               "(default %(default)s)")
    delivery.add_argument("--circuit_failures", type=more_than_zero,
                          default=DEFAULT_CIRCUIT_FAILURES, metavar="N",
                          help="transient failures in a row (from two lanes or more) after "
                               "which only probes are sent (default %(default)s)")
    delivery.add_argument("--circuit_probe_interval", type=positive_seconds,
                          default=DEFAULT_CIRCUIT_PROBE_INTERVAL, metavar="SECONDS",
                          help="time between probes while ilert fails for every key "
                               "(default %(default)s)")
    delivery.add_argument("--max_event_age", type=seconds, default=0.0, metavar="SECONDS",
                          help="dead-letter an ALERT event (reason stale) instead of sending it "
                               "when its source time (Kafka timestamp, MQTT or intake receipt) "
                               "is older than this, e.g. after a long outage or a start from "
                               "earliest; other event types still go (default 0: off)")
    delivery.add_argument("--stuck_after", type=positive_seconds, default=DEFAULT_STUCK_AFTER,
                          metavar="SECONDS",
                          help="warn (and list in /health?details) when a message has waited "
                               "this long and holds back what comes after it (default "
                               "%(default)s)")
    delivery.add_argument("--shutdown_timeout", type=seconds, default=DEFAULT_SHUTDOWN_TIMEOUT,
                          metavar="SECONDS",
                          help="how long in-flight deliveries may finish at shutdown "
                               "(default %(default)s)")
    add_fallback_options(daemon)
    add_ilert_options(daemon).add_argument(
        "--ilert_api_key", metavar="KEY",
        help="ilert user API key for policy sync (better from ILERT_API_KEY; a leading "
             "'Bearer ' is dropped)")


def daemon_config(args: argparse.Namespace, sources: Sources | None = None,
                  routes: tuple[Route, ...] = ()) -> DaemonConfig:
    """The daemon's configuration from parsed (and resolved) arguments; raises ``ConfigError``.
    The ``[[route]]`` s' topics are consumed as event topics too (a route without topics
    reads every event topic)."""
    sources = sources or Sources()
    kafka_routes = tuple(t for r in routes for t in r.kafka_topics)
    mqtt_routes = tuple(t for r in routes for t in r.mqtt_topics)
    if kafka_routes and not args.kafka_brokers:
        raise ConfigError(f"a route of {sources.config_file} reads Kafka topics "
                          f"({kafka_routes[0]}) and there is no --kafka_brokers")
    if mqtt_routes and not args.mqtt_host:
        raise ConfigError(f"a route of {sources.config_file} reads MQTT topics "
                          f"({mqtt_routes[0]}) and there is no --mqtt_host")
    drill_kafka, drill_mqtt = drill_options.topics(args)  # consumed as event topics too
    _refuse_likely_mix_ups(args, sources)  # first: a mix-up explains what follows from it
    _refuse_what_cannot_take_effect(args, sources)
    check_url(args.ilert_api_url, "--ilert_api_url")
    check_url(args.ilert_beat_url, "--ilert_beat_url")
    spool = spool_options.spool_choice(args)
    spool_file = spool.file or db_file(args)
    kafka = None
    if args.kafka_brokers:
        properties = kafka_properties(args, sources)
        check_sasl(properties)
        kafka = KafkaSettings(
            brokers=args.kafka_brokers, group_id=args.kafka_group_id,
            event_topics=tuple(dict.fromkeys((*topics(args.event_topic), *kafka_routes,
                                              *drill_kafka))),
            heartbeat_topics=topics(args.heartbeat_topic),
            policy_topics=topics(args.policy_topic),
            offset_reset=args.kafka_offset_reset, extra=tuple(properties.items()),
            dlq_topic=args.dlq_topic, max_buffered=args.max_buffered,
            connect_timeout=args.kafka_connect_timeout, spool_topic=spool.topic,
            # a revoked partition is handed over only once its requests finished or timed out
            revoke_timeout=max(args.shutdown_timeout, args.ilert_timeout + 1.0))
    mqtt = mqtt_settings(args, sources, (*mqtt_routes, *drill_mqtt))
    http = None
    if args.port is not None:
        http = HttpSettings(port=args.port, host=args.http_host,
                            tokens=tuple(dict.fromkeys(t for t in args.http_token if t)),
                            token_file=token_file(args.http_token_file),
                            allow=networks(args.http_allow) if args.http_allow else None,
                            rate_limit=args.http_rate_limit, max_body=args.http_max_body,
                            intake=args.intake == "on")
    config = DaemonConfig(
        ilert=IlertSettings(api_url=args.ilert_api_url, beat_url=args.ilert_beat_url,
                            timeout=args.ilert_timeout),
        retry=RetryPolicy(initial_delay=args.retry_initial_delay,
                          max_delay=max(args.retry_max_delay, args.retry_initial_delay),
                          rate_limit_delay=args.rate_limit_delay,
                          max_retries=args.max_retries),
        max_in_flight=args.max_in_flight, rate_limit_per_key=args.rate_limit_per_key,
        rate_limit_total=args.rate_limit_total, shutdown_timeout=args.shutdown_timeout,
        circuit_failures=args.circuit_failures,
        circuit_probe_interval=args.circuit_probe_interval,
        max_event_age=args.max_event_age, stuck_after=args.stuck_after,
        drill=drill_options.settings(args, sources, kafka=kafka, mqtt=mqtt, http=http),
        http=http, kafka=kafka, mqtt=mqtt, rules=mapping_rules(args), heartbeat_key=args.heartbeat,
        policy=policy_rules(args), api_key=api_key(args),
        db_file=spool_file, spool_max_bytes=args.spool_max_bytes,
        spool_produce_timeout=args.spool_produce_timeout,
        config_file=sources.config_file if routes else None,
        fallback=fallback_settings(args, sources, mqtt),
        # a Kafka spool has no file to put the journal beside: --journal PATH names one
        journal=journal_file(args, spool_file, spool=spool.topic is None and bool(
            (http is not None and http.intake) or (mqtt is not None and mqtt.buffer))),
        journal_max_bytes=args.journal_max_mb * 1024 * 1024)
    config.validate()
    return config


def run(args: argparse.Namespace) -> int:
    """Run the daemon until it is stopped."""
    from ilagent import daemon

    sources = getattr(args, "sources", None) or Sources()
    routes = routes_of(args, sources)
    return daemon.run(daemon_config(args, sources, routes), routes)




CONSUMER_ONLY = ("event_topic", "heartbeat_topic", "policy_topic")
MAPPING_ONLY = ("event_key", *ROUTE_REPLACES)
POLICY_ONLY = ("policy_routing_keys", "map_key_email", "map_key_shift", "shift_offset")


def _refuse_what_cannot_take_effect(args: argparse.Namespace, sources: Sources) -> None:
    """Kafka or MQTT options given on the command line without --kafka_brokers or --mqtt_host,
    or --intake without --port, would be ignored: a usage error (ilagent 0.9 ignores them).
    From the environment or a file they are just unused."""
    def given(names: tuple[str, ...]) -> list[str]:
        return [name for name in names if sources.of.get(name) == "flag"]

    if args.port is None and given(("intake",)):
        raise ConfigError("--intake needs --port (it chooses what the HTTP server serves)")
    if not args.kafka_brokers and given(KAFKA_ONLY):
        raise ConfigError(f"--{given(KAFKA_ONLY)[0]} needs --kafka_brokers (without it nothing "
                          "is consumed from Kafka)")
    if not args.mqtt_host and given(MQTT_ONLY):
        raise ConfigError(f"--{given(MQTT_ONLY)[0]} needs --mqtt_host (without it nothing is "
                          "received from MQTT)")
    if not (args.kafka_brokers or args.mqtt_host) and given(CONSUMER_ONLY):
        raise ConfigError(f"--{given(CONSUMER_ONLY)[0]} needs --kafka_brokers or --mqtt_host "
                          "(without them no topic is read)")
    if not (args.kafka_brokers or args.mqtt_host) and given(MAPPING_ONLY):
        raise ConfigError(f"--{given(MAPPING_ONLY)[0]} needs --kafka_brokers or --mqtt_host "
                          "(mapping and filtering apply to consumed messages; the HTTP intake "
                          "takes ilert events as they are)")
    if not args.policy_topic and given(POLICY_ONLY):
        raise ConfigError(f"--{given(POLICY_ONLY)[0]} needs --policy_topic (without it no "
                          "policy message is read)")
    if args.policy_topic and (args.kafka_brokers or args.mqtt_host):
        if not args.policy_routing_keys:
            raise ConfigError("--policy_topic needs --policy_routing_keys: the payload fields "
                              "that name the escalation policy (ilagent 0.9 drops every "
                              "message without them)")
        if not api_key(args):
            raise ConfigError("--policy_topic needs ILERT_API_KEY: an ilert user API key that "
                              "may edit escalation policies (or --ilert_api_key)")


def journal_file(args: argparse.Namespace, spool_file: str, *, spool: bool) -> str | None:
    """The journal's file: ``--journal PATH``; by default beside the spool file when the daemon
    keeps one (the intake, MQTT's buffer); None for ``off`` and a daemon without a spool."""
    given = (args.journal or "").strip()
    if given.lower() == "off":
        return None
    if given:
        return given
    return default_journal(spool_file) if spool else None


def token_file(path: str | None) -> str | None:
    """``--http_token_file``, which must be readable at start (the daemon then polls it)."""
    if path:
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ConfigError(f"--http_token_file {path}: {exc.strerror or exc}") from None
    return path or None


BROKER_ADDRESS = re.compile(r"[A-Za-z0-9.-]+:\d{1,5}")


def _refuse_likely_mix_ups(args: argparse.Namespace, sources: Sources) -> None:
    """Values that fit their option but were surely meant for another one (kcat's ``-b``)."""
    beat = args.heartbeat or ""
    if BROKER_ADDRESS.fullmatch(beat) and not beat.startswith("ih2:"):
        # the value is not repeated: -b is a secret option, masked in every line by value
        raise ConfigError("-b/--heartbeat is the daemon's own ilert heartbeat key, and its value "
                          "looks like a Kafka broker (host:port): give it as --kafka_brokers")
    if (sources.of.get("retry_max_delay", "default") != "default"
            and args.retry_max_delay < args.retry_initial_delay):
        raise ConfigError(f"--retry_max_delay {args.retry_max_delay:g} is less than "
                          f"--retry_initial_delay {args.retry_initial_delay:g}: the largest "
                          "retry delay cannot be below the first")


def api_key(args: argparse.Namespace) -> str | None:
    """The user API key for policy sync, without a leading ``Bearer `` (as ilagent 0.9)."""
    key = (args.ilert_api_key or "").strip()
    if key[:7].lower() == "bearer ":
        key = key[7:].strip()
    return key or None
