"""Where the daemon's spool lives: ``--spool kafka:TOPIC | sqlite:PATH`` and
``--spool_produce_timeout``.

SQLite (the file ``-f``) stays the embedded default, and ``--spool sqlite:PATH`` means the same
as ``-f PATH``; giving both is a usage error, whichever agrees. ``kafka:TOPIC`` keeps every
intake event as a record of TOPIC (:mod:`ilagent.spool_records`), consumed by the group of
``--kafka_group_id``: it needs ``--kafka_brokers`` (not ``-e``) and the HTTP intake or
``--mqtt_buffer`` (whose messages it then keeps, acknowledged once the brokers have them).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from ilagent.commands.common import positive_seconds
from ilagent.config import DEFAULT_SPOOL_PRODUCE_TIMEOUT
from ilagent.errors import ConfigError

KAFKA, SQLITE = "kafka:", "sqlite:"


@dataclass(frozen=True)
class SpoolChoice:
    """The spool ``--spool`` names: a Kafka topic, or a SQLite file (None: ``-f``'s)."""

    topic: str | None = None
    file: str | None = None


def add(group: Any) -> None:
    """The ``--spool`` options."""
    group.add_argument("--spool", metavar="kafka:TOPIC|sqlite:PATH",
                       help="where the intake keeps events until ilert took them: a SQLite "
                            "file (sqlite:PATH, the same as -f PATH; the default) or a Kafka "
                            "topic the daemons of --kafka_group_id consume (kafka:TOPIC; needs "
                            "--kafka_brokers)")
    group.add_argument("--spool_produce_timeout", type=positive_seconds,
                       default=DEFAULT_SPOOL_PRODUCE_TIMEOUT, metavar="SECONDS",
                       help="with --spool kafka:TOPIC, how long an event waits for the "
                            "broker's acknowledgement before the intake answers 503 "
                            "(default %(default)s)")


def spool_choice(args: argparse.Namespace) -> SpoolChoice:
    """What ``--spool`` says; ``ConfigError`` for a value that cannot work."""
    given = (args.spool or "").strip()
    if not given:
        return SpoolChoice()
    if getattr(args, "sub_db_file", None) or args.db_file:
        raise ConfigError("--spool and -f both name the spool: give one (--spool sqlite:PATH "
                          "is -f PATH)")
    kind, _, where = given.partition(":")
    if not where or f"{kind.lower()}:" not in (KAFKA, SQLITE):
        raise ConfigError(f"--spool {given}: give kafka:TOPIC or sqlite:PATH")
    if kind.lower() == "sqlite":
        return SpoolChoice(file=where)
    if not args.kafka_brokers:
        raise ConfigError(f"--spool {given} needs --kafka_brokers (the cluster of the topic)")
    intake = args.port is not None and args.intake == "on"
    if not intake and not getattr(args, "mqtt_buffer", False):
        raise ConfigError(f"--spool {given} needs what it spools: the HTTP intake (--port, "
                          "--intake on) or MQTT's buffer (--mqtt_buffer)")
    return SpoolChoice(topic=where)
