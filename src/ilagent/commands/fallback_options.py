"""The ``--fallback_*`` options of ``ilagent daemon`` and the
:class:`~ilagent.config.FallbackSettings` they make.

A channel is on when its destination is given: ``--fallback_mqtt_topic``, ``--fallback_webhook``,
``--fallback_smtp`` with ``--fallback_mail_to``. What cannot work is refused at start with one
line (exit 2): mail without a relay or a recipient, an MQTT topic without a broker to publish at
(MQTT mode's, or ``--fallback_mqtt_host``), a webhook that is not http(s), a wait below a second.
As elsewhere, options that would do nothing are refused when given as flags, and unused when
they come from the environment or the file.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import socket
from urllib.parse import urlsplit

from ilagent.commands.common import Parser, db_file, port, seconds
from ilagent.commands.mqtt_options import default_client_id
from ilagent.commands.sources import Sources
from ilagent.config import (
    DEFAULT_FALLBACK_AFTER,
    DEFAULT_FALLBACK_REPEAT,
    DEFAULT_MQTT_PORT,
    DEFAULT_SMTP_PORT,
    FallbackSettings,
    MqttSettings,
)
from ilagent.errors import ConfigError

FALLBACK_MQTT_ONLY = ("fallback_mqtt_port", "fallback_mqtt_username", "fallback_mqtt_password",
                      "fallback_mqtt_tls", "fallback_mqtt_ca")
TIMING = ("fallback_after", "fallback_repeat")
ADDRESS = re.compile(r"[^@\s,<>\"]+@[^@\s,<>\"]+")
HOST_PORT = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\s\[\]]+)(?::(?P<port>\d{1,5}))?")


def at_least_a_second(text: str) -> float:
    """A number of seconds ≥ 1 (an argparse type)."""
    value = seconds(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1 second")
    return value


def add_fallback_options(daemon: Parser) -> None:
    """The options of the local alarm raised while ilert stays out of reach."""
    group = daemon.add_argument_group(
        "local fallback", "a local alarm when ilert stays out of reach (the events still wait "
                          "for ilert and are delivered when it answers again)")
    group.add_argument("--fallback_after", type=at_least_a_second,
                       default=DEFAULT_FALLBACK_AFTER, metavar="SECONDS",
                       help="raise the local alarm once the circuit has been open this long "
                            "(ilert failing for every key; default %(default)g)")
    group.add_argument("--fallback_repeat", type=at_least_a_second,
                       default=DEFAULT_FALLBACK_REPEAT, metavar="SECONDS",
                       help="a reminder this often while the alarm lasts; a channel that "
                            "failed is tried again then (default %(default)g)")
    group.add_argument("--fallback_mqtt_topic", metavar="TOPIC",
                       help="publish the alarm here at QoS 1, retained: at MQTT mode's broker "
                            "(-m) or at --fallback_mqtt_host")
    group.add_argument("--fallback_mqtt_host", metavar="HOST",
                       help="the broker of --fallback_mqtt_topic for a daemon without MQTT "
                            "mode (e.g. the plant's, with a horn or a light on it)")
    group.add_argument("--fallback_mqtt_port", type=port, default=DEFAULT_MQTT_PORT,
                       metavar="PORT", help="its port (default %(default)s)")
    group.add_argument("--fallback_mqtt_username", metavar="NAME", help="its user name")
    group.add_argument("--fallback_mqtt_password", metavar="PASSWORD",
                       help="its password (better from ILAGENT_FALLBACK_MQTT_PASSWORD)")
    group.add_argument("--fallback_mqtt_tls", action="store_true", help="connect to it with TLS")
    group.add_argument("--fallback_mqtt_ca", metavar="PEM",
                       help="CA certificate(s) to verify it (default: the system's)")
    group.add_argument("--fallback_webhook", metavar="URL",
                       help="POST the alarm's JSON body to this http(s) URL (masked like a "
                            "secret: it may hold a token)")
    group.add_argument("--fallback_smtp", metavar="HOST[:PORT]",
                       help="send the alarm by mail through this relay (no authentication; "
                            f"port default {DEFAULT_SMTP_PORT})")
    group.add_argument("--fallback_mail_from", metavar="ADDRESS",
                       help="the mails' sender (default ilagent@<host name>)")
    group.add_argument("--fallback_mail_to", action="append", default=[], metavar="ADDRESS",
                       help="a recipient of the mails: repeatable, comma-separated")


def fallback_settings(args: argparse.Namespace, sources: Sources,
                      mqtt: MqttSettings | None) -> FallbackSettings | None:
    """The fallback's settings (None without any channel); ``mqtt`` is MQTT mode's connection.
    Raises ``ConfigError`` with one line naming the option."""
    def flags(names: tuple[str, ...]) -> list[str]:
        return [name for name in names if sources.of.get(name) == "flag"]

    recipients = tuple(dict.fromkeys(a.strip() for given in args.fallback_mail_to
                                     for a in given.split(",") if a.strip()))
    if args.fallback_smtp and not recipients:
        raise ConfigError("--fallback_smtp needs --fallback_mail_to: who gets the mail")
    for option, value in (("fallback_mail_to", recipients),
                          ("fallback_mail_from", args.fallback_mail_from)):
        if value and not args.fallback_smtp:
            raise ConfigError(f"--{option} needs --fallback_smtp: the mail relay to send "
                              "through (host:port)")
    for option, address in (*(("fallback_mail_to", a) for a in recipients),
                            ("fallback_mail_from", args.fallback_mail_from or "x@y")):
        if not ADDRESS.fullmatch(address):
            raise ConfigError(f"--{option} {address!r} is not a mail address (name@domain)")
    publisher = _mqtt_publisher(args, mqtt, given=flags(FALLBACK_MQTT_ONLY))
    webhook = args.fallback_webhook or None
    if webhook is not None:
        parts = urlsplit(webhook)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # the URL itself is not repeated: it may hold a token
            raise ConfigError("--fallback_webhook must be an http:// or https:// URL")
    smtp_host, smtp_port = _relay(args.fallback_smtp)
    settings = FallbackSettings(
        after=args.fallback_after, repeat=args.fallback_repeat,
        mqtt_topic=args.fallback_mqtt_topic or None, mqtt=publisher, webhook=webhook,
        smtp_host=smtp_host, smtp_port=smtp_port, mail_to=recipients,
        mail_from=args.fallback_mail_from or f"ilagent@{socket.gethostname() or 'localhost'}")
    if not settings.channels:
        if flags(TIMING):
            raise ConfigError(f"--{flags(TIMING)[0]} needs a fallback channel: "
                              "--fallback_mqtt_topic, --fallback_webhook or --fallback_smtp")
        return None
    return settings


def _relay(value: str | None) -> tuple[str | None, int]:
    """The host and port of ``--fallback_smtp HOST[:PORT]`` (no host: no mail)."""
    if not value:
        return None, DEFAULT_SMTP_PORT
    match = HOST_PORT.fullmatch(value.strip())
    relay_port = int(match["port"]) if match and match["port"] else DEFAULT_SMTP_PORT
    if match is None or not 0 < relay_port < 65536:
        raise ConfigError(f"--fallback_smtp {value!r} is not HOST or HOST:PORT")
    return match["host"].strip("[]"), relay_port


def _mqtt_publisher(args: argparse.Namespace, mqtt: MqttSettings | None, *,
                    given: list[str]) -> MqttSettings | None:
    """Where ``--fallback_mqtt_topic`` is published: ``--fallback_mqtt_host``, else MQTT mode's
    broker with its credentials and TLS files; each on a connection of its own. ``given``: the
    ``--fallback_mqtt_*`` connection options given as flags."""
    topic, host = args.fallback_mqtt_topic, args.fallback_mqtt_host
    if host and not topic:
        raise ConfigError("--fallback_mqtt_host needs --fallback_mqtt_topic: where to publish "
                          "the alarm")
    if given and not host:
        raise ConfigError(f"--{given[0]} needs --fallback_mqtt_host (without it the alarm goes "
                          "to MQTT mode's broker, with MQTT mode's settings)")
    if not topic:
        return None
    if any(c in topic for c in "+#\0") or topic.startswith("$"):
        raise ConfigError(f"--fallback_mqtt_topic {topic!r} cannot be published to: a topic "
                          "has no + or # and does not start with $")
    if not host:
        if mqtt is None:
            raise ConfigError("--fallback_mqtt_topic needs a broker: MQTT mode (-m/--mqtt_host) "
                              "or --fallback_mqtt_host")
        return dataclasses.replace(mqtt, client_id=f"{mqtt.client_id}-fallback",
                                   event_topics=(), heartbeat_topics=(), policy_topics=())
    if bool(args.fallback_mqtt_username) != bool(args.fallback_mqtt_password):
        raise ConfigError("--fallback_mqtt_username and --fallback_mqtt_password go together")
    if args.fallback_mqtt_ca and not args.fallback_mqtt_tls:
        raise ConfigError("--fallback_mqtt_ca needs --fallback_mqtt_tls")
    if args.fallback_mqtt_ca and not os.access(args.fallback_mqtt_ca, os.R_OK):
        raise ConfigError(f"--fallback_mqtt_ca {args.fallback_mqtt_ca}: the file cannot be read")
    # MQTT 3.1.1, which every broker speaks: a horn's broker may be an old or a small one
    return MqttSettings(host=host, port=args.fallback_mqtt_port,
                        client_id=f"{default_client_id(db_file(args))}-fallback",
                        username=args.fallback_mqtt_username,
                        password=args.fallback_mqtt_password, tls=args.fallback_mqtt_tls,
                        ca=args.fallback_mqtt_ca, version="3.1.1")
