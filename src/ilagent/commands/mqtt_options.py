"""The MQTT options of ``ilagent daemon`` and the :class:`~ilagent.config.MqttSettings` they make.

ilagent 0.9's names and defaults, plus ``--mqtt_version`` and ``--mqtt_cert_reload``. What 0.9
accepted silently and could not work is refused here with the flag's name: QoS 0 without the
buffer (0.9 refuses it too), a user without a password, TLS files without ``--mqtt_tls``, a
topic that is not a valid MQTT filter — or, with Kafka in the same daemon, not a valid Kafka
topic name, since the topic options apply to both.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import socket

from ilagent.commands.common import Parser, db_file, port, positive_seconds, seconds, topics
from ilagent.commands.sources import Sources
from ilagent.config import (
    DEFAULT_MQTT_CERT_RELOAD,
    DEFAULT_MQTT_PORT,
    MQTT_VERSIONS,
    MqttSettings,
)
from ilagent.errors import ConfigError
from ilagent.mqtt.topics import filter_problem

MQTT_ONLY = ("mqtt_port", "mqtt_name", "mqtt_username", "mqtt_password", "mqtt_tls", "mqtt_ca",
             "mqtt_client_cert", "mqtt_client_key", "mqtt_cert_reload", "mqtt_qos",
             "mqtt_buffer", "mqtt_shared_group", "mqtt_version", "mqtt_connect_timeout")

def add_mqtt_options(daemon: Parser) -> None:
    """The MQTT options, ilagent 0.9's names and defaults (plus a few of our own)."""
    mqtt = daemon.add_argument_group("MQTT")
    mqtt.add_argument("-m", "--mqtt_host", metavar="HOST", help="MQTT broker to subscribe at")
    mqtt.add_argument("-q", "--mqtt_port", type=port, default=DEFAULT_MQTT_PORT,
                      help="MQTT broker port (default %(default)s; TLS usually 8883)")
    mqtt.add_argument("-n", "--mqtt_name", metavar="CLIENT_ID",
                      help="MQTT client id (default: ilagent-<host>-<hash of the -f path>, "
                           "stable for one installation; changing it abandons the broker "
                           "session and the messages it holds)")
    mqtt.add_argument("--mqtt_username", metavar="NAME", help="MQTT user name")
    mqtt.add_argument("--mqtt_password", metavar="PASSWORD",
                      help="MQTT password (better from ILAGENT_MQTT_PASSWORD or the config "
                           "file than on the command line)")
    mqtt.add_argument("--mqtt_tls", action="store_true", help="connect with TLS")
    mqtt.add_argument("--mqtt_ca", metavar="PEM",
                      help="CA certificate(s) to verify the broker (default: the system's)")
    mqtt.add_argument("--mqtt_client_cert", metavar="PEM",
                      help="client certificate (mutual TLS; with --mqtt_client_key)")
    mqtt.add_argument("--mqtt_client_key", metavar="PEM", help="client private key (mutual TLS)")
    mqtt.add_argument("--mqtt_cert_reload", type=positive_seconds,
                      default=DEFAULT_MQTT_CERT_RELOAD, metavar="SECONDS",
                      help="how often the TLS files are checked for changes; a changed set "
                           "is used at once (default %(default)s)")
    mqtt.add_argument("--mqtt_qos", type=int, choices=(0, 1, 2), default=0,
                      help="subscription QoS: 1 or 2 = at least once (2 is received as 1), "
                           "0 only with --mqtt_buffer (default %(default)s)")
    mqtt.add_argument("--mqtt_buffer", action="store_true",
                      help="commit each message to the queue file, acknowledge it, then deliver "
                           "it from there")
    mqtt.add_argument("--mqtt_shared_group", metavar="GROUP",
                      help="share the subscriptions in this group ($share/GROUP/…): each "
                           "message goes to one daemon of the group")
    mqtt.add_argument("--mqtt_version", choices=MQTT_VERSIONS, default="5",
                      help="MQTT protocol version (default %(default)s)")
    mqtt.add_argument("--mqtt_connect_timeout", type=seconds, default=0.0, metavar="SECONDS",
                      help="exit 2 when the broker cannot be reached at start within this long "
                           "(default 0: wait for it, e.g. while DNS is not ready in a new pod)")


def mqtt_settings(args: argparse.Namespace, sources: Sources,
                  route_topics: tuple[str, ...] = ()) -> MqttSettings | None:
    """The MQTT settings, or None without --mqtt_host; raises ``ConfigError``.
    ``route_topics``: the routes' MQTT filters, subscribed to as event topics too."""
    if not args.mqtt_host:
        return None
    host = args.mqtt_host
    # an option the sources do not know (no resolution done) counts as given
    intent = [o for o in MQTT_ONLY if sources.of.get(o, "given") != "default"]
    if args.kafka_brokers and not intent:
        raise ConfigError("-m/--mqtt_host is the MQTT broker, and nothing else here asks for "
                          "MQTT: to reach a Kafka broker in another container put its name into "
                          f"--kafka_brokers (--kafka_brokers {host}:9092); to consume MQTT as "
                          "well, add --mqtt_qos 1")
    if "://" in host:
        raise ConfigError(f"--mqtt_host takes a host name, not a URL: give {host.split('://')[1]!r}"
                          " (the port with -q/--mqtt_port, TLS with --mqtt_tls)")
    if host.count(":") == 1:
        name, _, number = host.partition(":")
        raise ConfigError(f"--mqtt_host takes a host name: give -m {name} -q {number}")
    events = tuple(dict.fromkeys((*topics(args.event_topic), *route_topics)))
    beats = topics(args.heartbeat_topic)
    policies = topics(args.policy_topic)
    if not (events or beats or policies):
        raise ConfigError("--mqtt_host needs at least one topic: --event_topic, "
                          "--heartbeat_topic or --policy_topic")
    for name in (*events, *beats, *policies):  # -e etc. name Kafka topics too; routes do not
        check_mqtt_topic(name, also_kafka=bool(args.kafka_brokers) and name not in route_topics)
    if args.mqtt_qos == 0 and not args.mqtt_buffer:
        if sources.of.get("mqtt_qos") == "default":  # the user typed no QoS
            raise ConfigError("MQTT's default QoS 0 needs --mqtt_buffer: a QoS 0 message is "
                              "never acknowledged, so nothing could hold it back while ilert "
                              "fails; give --mqtt_qos 1 (at least once), or --mqtt_buffer to "
                              "queue it")
        raise ConfigError("--mqtt_qos 0 needs --mqtt_buffer: a QoS 0 message is never "
                          "acknowledged, so nothing could hold it back while ilert fails; use "
                          "--mqtt_qos 1 (at least once), or --mqtt_buffer to queue it")
    if bool(args.mqtt_username) != bool(args.mqtt_password):
        given, missing = (("--mqtt_username", "--mqtt_password") if args.mqtt_username
                          else ("--mqtt_password", "--mqtt_username"))
        raise ConfigError(f"{given} needs {missing}")
    if bool(args.mqtt_client_cert) != bool(args.mqtt_client_key):
        raise ConfigError("--mqtt_client_cert and --mqtt_client_key go together")
    tls_files = [f"--{o}" for o in ("mqtt_ca", "mqtt_client_cert", "mqtt_client_key")
                 if sources.of.get(o) == "flag"]
    if tls_files and not args.mqtt_tls:
        raise ConfigError(f"{tls_files[0]} needs --mqtt_tls")
    if args.mqtt_tls:
        for option in ("mqtt_ca", "mqtt_client_cert", "mqtt_client_key"):
            value = getattr(args, option)
            if value and not os.access(value, os.R_OK):
                raise ConfigError(f"--{option} {value}: the file cannot be read")
    if args.mqtt_shared_group and not SHARE_GROUP.fullmatch(args.mqtt_shared_group):
        raise ConfigError("--mqtt_shared_group must not contain /, + or #")
    return MqttSettings(
        host=args.mqtt_host, port=args.mqtt_port,
        client_id=args.mqtt_name or default_client_id(db_file(args)),
        username=args.mqtt_username, password=args.mqtt_password, tls=args.mqtt_tls,
        ca=args.mqtt_ca if args.mqtt_tls else None,
        client_cert=args.mqtt_client_cert if args.mqtt_tls else None,
        client_key=args.mqtt_client_key if args.mqtt_tls else None,
        qos=args.mqtt_qos, buffer=args.mqtt_buffer, shared_group=args.mqtt_shared_group,
        version=args.mqtt_version, event_topics=events, heartbeat_topics=beats,
        policy_topics=policies,
        cert_reload=args.mqtt_cert_reload, receive_maximum=args.max_buffered,
        connect_timeout=args.mqtt_connect_timeout)


SHARE_GROUP = re.compile(r"[^/+#]+")
KAFKA_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")


def check_mqtt_topic(name: str, *, also_kafka: bool) -> None:
    """Refuse a topic MQTT cannot subscribe to (or, with Kafka too, Kafka cannot)."""
    problem = filter_problem(name)
    if name.startswith("^"):
        problem = "it is a Kafka regex; MQTT filters use + and #"
    elif also_kafka and problem is None and not KAFKA_TOPIC.fullmatch(name):
        problem = ("topics apply to Kafka and MQTT alike, and Kafka topic names are letters, "
                   "digits, '.', '_' and '-'")
    if problem:
        raise ConfigError(f"topic {name!r} cannot be used: {problem}")


def default_client_id(spool: str) -> str:
    """``ilagent-<host>-<8 hex of the spool path>``: stable for one installation, different
    between installations (ilagent 0.9's fixed "ilagent" made two daemons kick each other off)."""
    host = re.sub(r"[^A-Za-z0-9-]", "", socket.gethostname())[:20] or "host"
    digest = hashlib.sha256(os.path.abspath(spool).encode()).hexdigest()[:8]
    return f"ilagent-{host}-{digest}"


