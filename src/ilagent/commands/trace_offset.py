"""``ilagent trace --offset TOPIC:PARTITION:OFFSET``: why one Kafka message did (or did not)
become an event, with today's config.

The message is read again with :func:`ilagent.kafka.sample.read_at` (assign only, a throwaway
group id ``ilagent-trace-<hex>`` that is never committed, so no group shows up in the cluster)
and read exactly as the daemon reads it (:mod:`ilagent.commands.candidate`): which kind its
topic is, the filter or the routes that took it or passed it over, the events it makes (keys
masked), or why it is dead-lettered. A malformed position, a topic, partition or offset the
cluster does not hold, and brokers that do not answer are one line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ilagent.commands.candidate import Candidate, classifier, current
from ilagent.commands.common import add_mapping_options, add_policy_options, positive_seconds
from ilagent.commands.kafka_options import (
    add_connection_options,
    check_sasl,
    kafka_properties,
)
from ilagent.commands.replay_report import masked
from ilagent.commands.sources import Sources
from ilagent.errors import EXIT_OK, NotFoundError, UsageError
from ilagent.logs import hide_secrets, mask_key
from ilagent.mapping.messages import MISSING, Dropped, lookup, parse_object
from ilagent.mapping.policy import PolicyUpdate
from ilagent.mapping.reading import Event, Ping, Reading, Refused

DEFAULT_TIMEOUT = 10.0
KINDS = {"event": "an event topic", "heartbeat": "a heartbeat topic",
         "policy": "an escalation-policy topic"}


def position(text: str) -> tuple[str, int, int]:
    """``TOPIC:PARTITION:OFFSET`` (an argparse type); Kafka topic names hold no ``:``."""
    topic, _, rest = text.rpartition(":")
    topic, _, partition = topic.rpartition(":")
    if not topic or not partition.isdigit() or not rest.isdigit():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not TOPIC:PARTITION:OFFSET (e.g. plant-alarms:0:1234)")
    return topic, int(partition), int(rest)


def add_arguments(parser: Any) -> None:
    """``--offset`` and what reading it needs: the daemon's topics, Kafka connection, mapping
    and policy options (``--config`` is the command's global one)."""
    parser.add_argument("--offset", type=position, metavar="TOPIC:PARTITION:OFFSET",
                        help="explain what the daemon makes of this Kafka message today: read "
                             "again (no consumer group joined or committed) with the mapping "
                             "flags and [[route]]s")
    parser.add_argument("--timeout", type=positive_seconds, metavar="SECONDS",
                        help="with --offset: for reaching the brokers and reading (default "
                             f"{DEFAULT_TIMEOUT:g})")
    topics = parser.add_argument_group("the daemon's topics (which kind the message is)")
    topics.add_argument("-e", "--event_topic", action="append", default=[], metavar="TOPIC",
                        help="event topics (default: the message's topic is taken to be one)")
    topics.add_argument("-r", "--heartbeat_topic", action="append", default=[],
                        metavar="TOPIC", help="heartbeat topics")
    topics.add_argument("--policy_topic", action="append", default=[], metavar="TOPIC",
                        help="escalation-policy update topics")
    add_connection_options(parser.add_argument_group("Kafka"))
    add_mapping_options(parser)
    add_policy_options(parser)


def run(args: argparse.Namespace) -> int:
    """Read the message at ``--offset`` and print why it comes to what it comes to."""
    sources: Sources = getattr(args, "sources", None) or Sources()
    topic, partition, offset = args.offset
    config = current(args, sources)
    if not args.kafka_brokers:
        raise UsageError("--offset needs --kafka_brokers: the Kafka cluster to read")
    properties = kafka_properties(args, sources)
    check_sasl(properties)
    from ilagent.kafka.sample import read_at  # loads librdkafka

    try:
        message = read_at(properties, brokers=args.kafka_brokers, topic=topic,
                          partition=partition, offset=offset,
                          timeout=args.timeout or DEFAULT_TIMEOUT)
    except NotFoundError as exc:
        raise UsageError(str(exc)) from None
    configured = args.event_topic or args.heartbeat_topic or args.policy_topic or any(
        r.kafka_topics for r in config.routes)
    kind = classifier(args, config.routes)(topic) if configured else classifier(
        argparse.Namespace(event_topic=[topic]), ())(topic)
    reading = config.read(kind, message.value, topic=topic, message_key=message.key)
    lines = [f"{topic}:{partition}:{offset} (key {_text(message.key)}, {len(message.value)} "
             f"bytes), read with {config.name}"]
    if kind is None:
        lines.append(f"not read: {topic} is none of the daemon's topics (-e, -r, "
                     "--policy_topic, the routes' kafka_topics)")
    else:
        lines.append(f"read as a message of {KINDS[kind.value]}")
        lines += explain(reading, config, message.value)
    print(hide_secrets("\n".join(lines)), file=sys.stdout)
    return EXIT_OK


def explain(reading: Reading, config: Candidate, payload: bytes) -> list[str]:
    """The decision in plain words, one line each."""
    if isinstance(reading, Dropped):
        return [f"filtered: {filter_words(config, payload) or reading.detail}",
                "nothing is sent; the offset is committed"]
    if isinstance(reading, Refused):
        return [f"dead-lettered: {reading.reason}: {reading.detail}"]
    if isinstance(reading, Event):
        return [f"mapped by the flags: {_event_words(reading)}"]
    if isinstance(reading, Ping):
        return [f"a heartbeat: pings {mask_key(reading.key)}"]
    if isinstance(reading, PolicyUpdate):
        return [f"a policy update: level {reading.level} of the policy with routing key "
                f"{reading.routing_key} goes to {reading.email}"]
    lines = [route_words(config, name, payload) for name in reading.passed]
    if reading.filtered:
        return [*lines, f"filtered: no route took it{'' if reading.passed else ' (' + reading.detail + ')'}",
                "nothing is sent; the offset is committed"]
    for part in reading.parts:
        if isinstance(part, Event):
            lines.append(f"route {part.mapped.route} took it: {_event_words(part)}")
        else:
            lines.append(f"route {part.route} took it and dead-letters it: {part.reason}: "
                         f"{part.detail}")
    return lines


def route_words(config: Candidate, name: str, payload: bytes) -> str:
    """Why the route ``name`` passed the message over: its first condition that failed, and
    what the message has there."""
    document = parse_object(payload)
    route = next((r for r in config.routes if r.name == name), None)
    failed = None if route is None or isinstance(document, Dropped) else next(
        (c for c in route.conditions if not c.holds(document)), None)
    if failed is None or isinstance(document, Dropped):
        return f"route {name} passed it over"
    value = lookup(document, failed.path)
    has = ("nothing there" if value is MISSING
           else json.dumps(value, ensure_ascii=False, default=str))
    return f"route {name} did not match: {failed.text} (the message has {has})"


def filter_words(config: Candidate, payload: bytes) -> str:
    """How the ``--filter_key``/``--filter_val`` filter read the message ("" when it passed)."""
    rules = config.rules
    document = parse_object(payload)
    if rules.filter_key is None or isinstance(document, Dropped):
        return ""
    wanted = (f"{rules.filter_key}={rules.filter_val}" if rules.filter_val is not None
              else f"{rules.filter_key} (present)")
    if rules.filter_key not in document:
        return f"filter {wanted} did not match: the message has no {rules.filter_key!r}"
    value = document[rules.filter_key]
    if rules.filter_val is None:
        return ""
    if not isinstance(value, str):
        return f"filter {wanted} did not match: {json.dumps(value)} is not a string"
    return f"filter {wanted} did not match: {value}" if value != rules.filter_val else ""


def _event_words(event: Event) -> str:
    body = masked(event.mapped.event)
    lines = (f"{body['eventType']} for alert key {body.get('alertKey') or '(none)'} to "
             f"alert source {body['integrationKey']}: POST …{_masked_path(event)} "
             f"{json.dumps(body, ensure_ascii=False)}")
    warnings = [*event.mapped.warnings, *event.mapped.missing]
    return lines + (f" (warnings: {'; '.join(warnings)})" if warnings else "")


def _masked_path(event: Event) -> str:
    path, _, key = event.mapped.path.rpartition("/")
    return f"{path}/{mask_key(key)}"


def _text(key: bytes | None) -> str:
    if key is None:
        return "none"
    return repr(key.decode("utf-8", "replace"))
