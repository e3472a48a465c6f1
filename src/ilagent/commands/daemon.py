"""``ilagent daemon``: its options, and the :class:`~ilagent.config.DaemonConfig` they describe.

Differences from ilagent 0.9 on purpose: ``-e``/``-r`` may be repeated for several topics
(ilagent refuses a repeated option), and ``daemon`` with nothing to run is a usage error
instead of a silent exit.
"""

from __future__ import annotations

import argparse

from ilagent.commands.common import (
    Parser,
    Subparsers,
    add_global_options,
    add_ilert_options,
    add_mapping_options,
    db_file,
    env,
    key_value,
    mapping_rules,
    port,
    positive_int,
    seconds,
)
from ilagent.config import (
    DEFAULT_CIRCUIT_FAILURES,
    DEFAULT_CIRCUIT_PROBE_INTERVAL,
    DEFAULT_HTTP_HOST,
    DEFAULT_HTTP_MAX_BODY,
    DEFAULT_KAFKA_GROUP_ID,
    DEFAULT_MAX_BUFFERED,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RATE_LIMIT_PER_KEY,
    DEFAULT_RATE_LIMIT_TOTAL,
    DEFAULT_SHUTDOWN_TIMEOUT,
    DaemonConfig,
    HttpSettings,
    IlertSettings,
    KafkaSettings,
    RetryPolicy,
)


def add_parser(sub: Subparsers) -> None:
    """Add ``daemon`` and its options."""
    daemon: Parser = sub.add_parser(
        "daemon", help="run the bridge: Kafka consumer, HTTP server, heartbeat")
    add_global_options(daemon)
    daemon.add_argument("-p", "--port", type=port, help="serve HTTP on this port")
    daemon.add_argument("--http_host", default=DEFAULT_HTTP_HOST,
                        help="address the HTTP server binds (default %(default)s)")
    daemon.add_argument("--http_token", default=env("ILAGENT_HTTP_TOKEN"),
                        help="require 'Authorization: Bearer TOKEN' on all routes but /health "
                             "and /ready (env ILAGENT_HTTP_TOKEN)")
    daemon.add_argument("--http_max_body", type=positive_int, default=DEFAULT_HTTP_MAX_BODY,
                        metavar="BYTES", help="largest request body (default %(default)s)")
    daemon.add_argument("-b", "--heartbeat", metavar="KEY",
                        help="ping this heartbeat every 30 s while the daemon is ready")
    kafka = daemon.add_argument_group("Kafka")
    kafka.add_argument("--kafka_brokers", metavar="HOST:PORT[,…]", help="bootstrap brokers")
    kafka.add_argument("--kafka_group_id", default=DEFAULT_KAFKA_GROUP_ID,
                       help="consumer group (default %(default)s)")
    kafka.add_argument("-e", "--event_topic", action="append", default=[], metavar="TOPIC",
                       help="topic of event messages (repeatable)")
    kafka.add_argument("-r", "--heartbeat_topic", action="append", default=[], metavar="TOPIC",
                       help='topic of heartbeat messages {"integrationKey": …} (repeatable)')
    kafka.add_argument("--kafka_config", action="append", type=key_value, default=[],
                       metavar="KEY=VALUE",
                       help="librdkafka property, e.g. security.protocol=SASL_SSL (repeatable)")
    kafka.add_argument("--kafka_offset_reset", choices=("earliest", "latest"), default="latest",
                       help="where a new group starts (default %(default)s)")
    kafka.add_argument("--dlq_topic", metavar="TOPIC",
                       help="write undeliverable messages here, with reason headers")
    kafka.add_argument("--max_buffered", type=positive_int, default=DEFAULT_MAX_BUFFERED,
                       metavar="N",
                       help="messages of one partition waiting for ilert before it is paused "
                            "(default %(default)s)"),
    add_mapping_options(daemon)
    delivery = daemon.add_argument_group("delivery")
    delivery.add_argument("--max_in_flight", type=positive_int, default=DEFAULT_MAX_IN_FLIGHT,
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
    delivery.add_argument("--retry_initial_delay", type=seconds, default=1.0, metavar="SECONDS",
                          help="first retry delay before jitter (default %(default)s)")
    delivery.add_argument("--retry_max_delay", type=seconds, default=60.0, metavar="SECONDS",
                          help="largest retry delay (default %(default)s)")
    delivery.add_argument("--rate_limit_delay", type=seconds, default=10.0, metavar="SECONDS",
                          help="least wait after a 429 without Retry-After "
                               "(default %(default)s)")
    delivery.add_argument("--circuit_failures", type=positive_int,
                          default=DEFAULT_CIRCUIT_FAILURES, metavar="N",
                          help="transient failures in a row (from two lanes or more) after "
                               "which only probes are sent (default %(default)s)")
    delivery.add_argument("--circuit_probe_interval", type=seconds,
                          default=DEFAULT_CIRCUIT_PROBE_INTERVAL, metavar="SECONDS",
                          help="time between probes while ilert fails for every key "
                               "(default %(default)s)")
    delivery.add_argument("--shutdown_timeout", type=seconds, default=DEFAULT_SHUTDOWN_TIMEOUT,
                          metavar="SECONDS",
                          help="how long in-flight deliveries may finish at shutdown "
                               "(default %(default)s)")
    add_ilert_options(daemon)


def daemon_config(args: argparse.Namespace) -> DaemonConfig:
    """The daemon's configuration from parsed arguments; raises ``ConfigError``."""
    kafka = None
    if args.kafka_brokers:
        kafka = KafkaSettings(
            brokers=args.kafka_brokers, group_id=args.kafka_group_id,
            event_topics=tuple(args.event_topic), heartbeat_topics=tuple(args.heartbeat_topic),
            offset_reset=args.kafka_offset_reset, extra=tuple(args.kafka_config),
            dlq_topic=args.dlq_topic, max_buffered=args.max_buffered,
            # a revoked partition is handed over only once its requests finished or timed out
            revoke_timeout=max(args.shutdown_timeout, args.ilert_timeout + 1.0))
    http = None
    if args.port is not None:
        http = HttpSettings(port=args.port, host=args.http_host, token=args.http_token,
                            max_body=args.http_max_body)
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
        http=http, kafka=kafka, rules=mapping_rules(args), heartbeat_key=args.heartbeat,
        db_file=db_file(args))
    config.validate()
    return config


def run(args: argparse.Namespace) -> int:
    """Run the daemon until it is stopped."""
    from ilagent import daemon

    return daemon.run(daemon_config(args))
