"""The fire-drill options of ``ilagent daemon`` (and ``ilagent drill``), and the
:class:`~ilagent.config.DrillSettings` they make.

Off by default: ``--drill_interval S`` turns drills on (at least every 12 s: the drill
heartbeat is pinged once a drill, and ilert takes 5 pings a minute per heartbeat), and each
source is drilled only when asked: ``--drill_topic`` (Kafka), ``--drill_mqtt_topic`` (MQTT 5,
not with ``--mqtt_shared_group``), ``--drill_intake`` (the HTTP intake). The drill topics are
subscribed to as event topics (added when the event topics do not name them). What cannot work
is one line and exit 2, named by its flag.
"""

from __future__ import annotations

import argparse

from ilagent.commands.common import Parser, positive_seconds, seconds
from ilagent.commands.sources import Sources
from ilagent.config import (
    MIN_DRILL_INTERVAL,
    DrillSettings,
    HttpSettings,
    KafkaSettings,
    MqttSettings,
)
from ilagent.errors import ConfigError
from ilagent.mapping.topics import filter_matches, kafka_topics
from ilagent.mqtt.topics import filter_problem

ONCE_TIMEOUT = 30.0  # ``ilagent drill`` without --drill_timeout or --drill_interval
MAX_MESSAGE = 1024 * 1024  # a sample message larger than this is surely the wrong file
DRILL_ONLY = ("drill_timeout", "drill_message", "drill_heartbeat", "drill_topic",
              "drill_mqtt_topic", "drill_intake")


def add(parser: Parser) -> None:
    """The ``--drill_*`` options."""
    drill = parser.add_argument_group("fire drills (off by default)")
    drill.add_argument("--drill_interval", type=seconds, default=0.0, metavar="SECONDS",
                       help="send a fire drill through each drilled source this often and "
                            f"follow it to ilert; at least {MIN_DRILL_INTERVAL:g} (default 0: "
                            "off)")
    drill.add_argument("--drill_timeout", type=positive_seconds, metavar="SECONDS",
                       help="each source's drill must reach ilert within this long (default: "
                            f"the interval; ilagent drill: {ONCE_TIMEOUT:g})")
    drill.add_argument("--drill_message", metavar="FILE",
                       help="a sample message that passes your filter and mapping (routes); "
                            "for --drill_intake an ilert event with its integrationKey")
    drill.add_argument("--drill_heartbeat", metavar="KEY",
                       help="ilert heartbeat pinged after each drill every drilled source "
                            "passed (its own, not -b's)")
    drill.add_argument("--drill_topic", metavar="TOPIC",
                       help="drill Kafka: produce the drill to this topic (the real one or a "
                            "dedicated one; it is consumed as an event topic)")
    drill.add_argument("--drill_mqtt_topic", metavar="TOPIC",
                       help="drill MQTT: publish the drill to this topic (MQTT 5; not with "
                            "--mqtt_shared_group; subscribed to as an event topic)")
    drill.add_argument("--drill_intake", action="store_true",
                       help="drill the HTTP intake: post the drill to this daemon's own "
                            "/api/events")


def drilling(args: argparse.Namespace) -> bool:
    """True when drills are on: an interval, or ``ilagent drill``."""
    return bool(args.drill_interval) or bool(getattr(args, "drill_once", False))


def topics(args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The drill topics to subscribe to as event topics: (Kafka, MQTT)."""
    if not drilling(args):
        return (), ()
    return ((args.drill_topic,) if args.drill_topic and args.kafka_brokers else (),
            (args.drill_mqtt_topic,) if args.drill_mqtt_topic and args.mqtt_host else ())


def settings(args: argparse.Namespace, sources: Sources, *, kafka: KafkaSettings | None,
             mqtt: MqttSettings | None, http: HttpSettings | None) -> DrillSettings | None:
    """The drill settings, or None when drills are off; raises ``ConfigError``."""
    once = bool(getattr(args, "drill_once", False))
    if not once and not args.drill_interval:
        flags = [name for name in DRILL_ONLY if sources.of.get(name) == "flag"]
        if flags:
            raise ConfigError(f"--{flags[0]} needs --drill_interval (fire drills are off "
                              "without it)")
        return None
    interval = args.drill_interval
    if interval and interval < MIN_DRILL_INTERVAL:
        raise ConfigError(f"--drill_interval {interval:g} is too short: at least "
                          f"{MIN_DRILL_INTERVAL:g} s (each drill may ping the drill heartbeat, "
                          "and ilert takes 5 pings a minute per heartbeat)")
    if not (args.drill_topic or args.drill_mqtt_topic or args.drill_intake):
        raise ConfigError("fire drills need a source to drill: --drill_topic (Kafka), "
                          "--drill_mqtt_topic (MQTT) or --drill_intake (the HTTP intake)")
    _check_kafka(args.drill_topic, kafka)
    _check_mqtt(args.drill_mqtt_topic, mqtt)
    message = _sample(args.drill_message)
    if args.drill_intake:
        if http is None or not http.intake:
            raise ConfigError("--drill_intake needs the HTTP intake: -p/--port (with "
                              "--intake on)")
        # here, not with the module: the parser (and the health check) go without the
        # drills' mapping, templates and metrics
        from ilagent.drills.events import sample_key

        if sample_key(message) is None:
            raise ConfigError(f"--drill_intake: the drill message {args.drill_message} has no "
                              "integrationKey: the intake takes ilert events, and its drill "
                              "resolves on the sample's own integration key")
    timeout = args.drill_timeout or interval or ONCE_TIMEOUT
    return DrillSettings(interval=interval, timeout=timeout, message=message,
                         heartbeat=args.drill_heartbeat or None,
                         kafka_topic=args.drill_topic or None,
                         mqtt_topic=args.drill_mqtt_topic or None,
                         intake=bool(args.drill_intake), once=once)


def _sample(path: str | None) -> bytes:
    if not path:
        raise ConfigError("fire drills need --drill_message FILE: a sample message that passes "
                          "your filter and mapping")
    try:
        with open(path, "rb") as handle:
            message = handle.read(MAX_MESSAGE + 1)
    except OSError as exc:
        raise ConfigError(f"--drill_message {path}: {exc.strerror or exc}") from None
    if not message.strip():
        raise ConfigError(f"--drill_message {path} is empty")
    if len(message) > MAX_MESSAGE:
        raise ConfigError(f"--drill_message {path} is larger than {MAX_MESSAGE} bytes")
    return message.strip()


def _check_kafka(topic: str | None, kafka: KafkaSettings | None) -> None:
    if not topic:
        return
    if kafka is None:
        raise ConfigError("--drill_topic needs --kafka_brokers")
    if topic.startswith("^") or "," in topic:
        raise ConfigError(f"--drill_topic {topic!r}: one topic name, not a regex or a list (the "
                          "drill is produced to it)")
    for kind, flag, options in (("heartbeat", "-r", kafka.heartbeat_topics),
                                ("policy", "--policy_topic", kafka.policy_topics)):
        if kafka_topics(options)(topic):
            raise ConfigError(f"--drill_topic {topic} is a {kind} topic ({flag}): drills go "
                              "through an event topic")


def _check_mqtt(topic: str | None, mqtt: MqttSettings | None) -> None:
    if not topic:
        return
    if mqtt is None:
        raise ConfigError("--drill_mqtt_topic needs --mqtt_host")
    problem = filter_problem(topic)
    if problem or "+" in topic or "#" in topic:
        raise ConfigError(f"--drill_mqtt_topic {topic!r}: one topic name, no wildcards (the "
                          f"drill is published to it){f': {problem}' if problem else ''}")
    if mqtt.version != "5":
        raise ConfigError("--drill_mqtt_topic needs MQTT 5 (--mqtt_version 5): the drill "
                          "message is marked by a user property, which MQTT 3.1.1 does not have")
    if mqtt.shared_group:
        raise ConfigError("--drill_mqtt_topic cannot work with --mqtt_shared_group: another "
                          "daemon of the group may receive the drill message")
    for kind, flag, filters in (("heartbeat", "-r", mqtt.heartbeat_topics),
                                ("policy", "--policy_topic", mqtt.policy_topics)):
        if any(filter_matches(f, topic) for f in filters):
            raise ConfigError(f"--drill_mqtt_topic {topic} is a {kind} topic ({flag}): drills "
                              "go through an event topic")
