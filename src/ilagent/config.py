"""Configuration: plain frozen dataclasses and their defaults, built once by the CLI, passed down.

Foundation layer: imports no client library and nothing above itself, so every command can
load it cheaply (``ilagent queue list`` never loads librdkafka). The behaviour that reads these
settings lives with its part: :mod:`ilagent.delivery.backoff` for :class:`RetryPolicy`,
:mod:`ilagent.mapping.messages` for :class:`MappingRules`, :mod:`ilagent.kafka.settings` for
:class:`KafkaSettings`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from ilagent.errors import ConfigError
from ilagent.secret_options import (
    PROPERTIES,
    is_secret_property,
    masked_repr,
    secret_field,
    secrets_of,
)

__all__ = [
    "ConfigError",
    "DaemonConfig",
    "FallbackSettings",
    "HttpSettings",
    "IlertSettings",
    "KafkaSettings",
    "MappingRules",
    "MqttSettings",
    "PolicyRules",
    "RetryPolicy",
    "is_secret_property",
]

ROUTE_TABLE = "route"  # the [[route]] tables of the config file (ilagent.mapping.routes)
DEFAULT_API_URL = "https://api.ilert.com/api"
DEFAULT_BEAT_URL = "https://beat.ilert.com/api"
DEFAULT_TIMEOUT = 10.0  # ilagent 0.9: 25 s; a revoke waits this long for in-flight requests
DEFAULT_INITIAL_DELAY = 1.0
DEFAULT_MAX_DELAY = 60.0
# ilert counts events in fixed one-minute windows and suggests waiting 10-30 s after a 429
DEFAULT_RATE_LIMIT_DELAY = 10.0
DEFAULT_KAFKA_GROUP_ID = "ilagent"
DEFAULT_OFFSET_RESET = "latest"
DEFAULT_MAX_BUFFERED = 2000  # per partition; above it the partition is paused
DEFAULT_CIRCUIT_FAILURES = 5
DEFAULT_CIRCUIT_PROBE_INTERVAL = 5.0
# --spool kafka:TOPIC: how long the intake waits for the broker's ack before it answers 503
DEFAULT_SPOOL_PRODUCE_TIMEOUT = 5.0

DEFAULT_MQTT_PORT = 1883
DEFAULT_MQTT_CERT_RELOAD = 30.0  # as ilagent 0.9
DEFAULT_MQTT_KEEPALIVE = 30
MQTT_VERSIONS = ("5", "3.1.1")

# binds only with pacing off, where it is also what a crash sends twice (docs/capacity.md)
DEFAULT_MAX_IN_FLIGHT = 24
DEFAULT_RATE_LIMIT_PER_KEY = 50
DEFAULT_RATE_LIMIT_TOTAL = 700
DEFAULT_SHUTDOWN_TIMEOUT = 10.0
MAX_RETRY_AFTER = 300.0  # the longest Retry-After of ilert's that is honoured as it is
DEFAULT_STUCK_AFTER = 300.0  # a message waiting this long, holding back the rest, is reported
DEFAULT_HTTP_HOST = "0.0.0.0"  # as ilagent, so the port is reachable from outside a container
DEFAULT_HTTP_MAX_BODY = 1024 * 1024
# per client address (IPv6: per /64); bursts of a sixth of it, so a replay of 100 events at
# once passes and a loop gone wrong is slowed to 10 a second
DEFAULT_HTTP_RATE_LIMIT = 600
DEFAULT_DB_FILE = "./ilagent.db3"
JOURNAL_SUFFIX = ".journal.db"  # the journal beside a spool file: <spool>.journal.db
DEFAULT_JOURNAL_MAX_MB = 64
# where the sandbox page's "trace" links point: a daemon on this machine with the guide's port
DEFAULT_AGENT_URL = "http://127.0.0.1:8977"
# transient failures never exhaust an event by default, on any source (0 = never give up)
DEFAULT_MAX_RETRIES = 0
HEARTBEAT_INTERVAL = 30.0
HEARTBEAT_PINGS_PER_MINUTE = 5  # ilert's limit per heartbeat key
DEFAULT_FALLBACK_AFTER = 300.0  # the circuit open this long raises the local alarm
DEFAULT_FALLBACK_REPEAT = 1800.0  # then a reminder every half hour: a shift notices, no flood
DEFAULT_FALLBACK_TIMEOUT = 10.0  # one attempt of one fallback channel
DEFAULT_SMTP_PORT = 25
# a drill pings its heartbeat at most once an interval: ilert takes 5 pings a minute per key
MIN_DRILL_INTERVAL = 60.0 / HEARTBEAT_PINGS_PER_MINUTE


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait before attempt ``n + 1`` and when to give up (see :mod:`ilagent.delivery.backoff`).

    ``max_retries`` counts failed attempts (a 429 is a wait, not a failure); 0 means unlimited,
    the at-least-once default of every source.
    """

    initial_delay: float = DEFAULT_INITIAL_DELAY
    max_delay: float = DEFAULT_MAX_DELAY
    rate_limit_delay: float = DEFAULT_RATE_LIMIT_DELAY
    max_retries: int = DEFAULT_MAX_RETRIES


@dataclass(frozen=True)
class MappingRules:
    """The mapping and filter flags of ``daemon`` and ``map`` (all optional)."""

    __repr__ = masked_repr  # secrets as everywhere (ilagent.secret_options)

    event_key: str | None = secret_field("event_key")
    map_key_etype: str | None = None
    map_key_alert_key: str | None = None
    map_key_summary: str | None = None
    map_val_etype_alert: str | None = None
    map_val_etype_accept: str | None = None
    map_val_etype_resolve: str | None = None
    filter_key: str | None = None
    filter_val: str | None = None
    forward_message_payload: bool = False


DEFAULT_MAP_KEY_EMAIL = "data.email"
DEFAULT_MAP_KEY_SHIFT = "data.shift"
# ilert allows 120 requests/min per user API key; an update takes up to 3 (1 with the cache)
DEFAULT_POLICY_UPDATES_PER_MINUTE = 40
POLICY_CACHE_TTL = 60.0  # seconds a user or policy lookup is reused


@dataclass(frozen=True)
class PolicyRules:
    """How a policy message names the user, the level and the policy (``--policy_*`` flags)."""

    routing_keys: tuple[str, ...] = ()
    map_key_email: str = DEFAULT_MAP_KEY_EMAIL
    map_key_shift: str = DEFAULT_MAP_KEY_SHIFT
    shift_offset: int = 0
    routing_key_separator: str = ""  # ilagent 0.9 joins without one


# librdkafka properties --kafka_config must not set: they would break at-least-once, or have
# an option of their own
FORBIDDEN_KAFKA_PROPERTIES = {
    "enable.auto.commit": "ilagent commits offsets itself, only after delivery",
    "enable.auto.offset.store": "ilagent stores offsets itself, only after delivery",
    "enable.partition.eof": "ilagent relies on it being off",
    "group.id": "use --kafka_group_id",
    "bootstrap.servers": "use --kafka_brokers",
    "auto.offset.reset": "use --kafka_offset_reset",
}
@dataclass(frozen=True)
class KafkaSettings:
    """What the bridge consumes and how (from the ``daemon`` flags)."""

    __repr__ = masked_repr

    brokers: str
    group_id: str = DEFAULT_KAFKA_GROUP_ID
    event_topics: tuple[str, ...] = ()
    heartbeat_topics: tuple[str, ...] = ()
    policy_topics: tuple[str, ...] = ()
    offset_reset: str = DEFAULT_OFFSET_RESET
    # --kafka_config KEY=VALUE (and the files'), applied last; secret ones by name
    extra: tuple[tuple[str, str], ...] = secret_field(PROPERTIES, default=())
    dlq_topic: str | None = None
    max_buffered: int = DEFAULT_MAX_BUFFERED
    revoke_timeout: float = 10.0
    connect_timeout: float = 0.0  # > 0: exit 2 when no broker is reached at start by then
    # --spool kafka:TOPIC: the intake's spool, consumed like any topic (ilagent.spool_records)
    spool_topic: str | None = None

    @property
    def topics(self) -> tuple[str, ...]:
        """Every topic (or pattern) the consumer subscribes to."""
        spool = (self.spool_topic,) if self.spool_topic else ()
        return (*self.event_topics, *self.heartbeat_topics, *self.policy_topics, *spool)

    def secrets(self) -> list[str]:
        """The values of secret properties (to keep them out of every log line)."""
        return [value for _name, value in secrets_of(self)]


@dataclass(frozen=True)
class MqttSettings:
    """The MQTT connection and what it subscribes to (from the ``daemon`` flags)."""

    __repr__ = masked_repr

    host: str
    client_id: str
    port: int = DEFAULT_MQTT_PORT
    username: str | None = None
    password: str | None = secret_field("mqtt_password")
    tls: bool = False
    ca: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    qos: int = 0
    buffer: bool = False
    shared_group: str | None = None
    version: str = "5"
    event_topics: tuple[str, ...] = ()
    heartbeat_topics: tuple[str, ...] = ()
    policy_topics: tuple[str, ...] = ()
    cert_reload: float = DEFAULT_MQTT_CERT_RELOAD
    keepalive: int = DEFAULT_MQTT_KEEPALIVE
    receive_maximum: int = DEFAULT_MAX_BUFFERED  # QoS 1 messages in hand before the broker waits
    reconnect_max_delay: float = 30.0
    connect_timeout: float = 0.0  # > 0: exit 2 when the broker is not reached at start by then

    @property
    def topics(self) -> tuple[str, ...]:
        """Every configured topic filter."""
        return (*self.event_topics, *self.heartbeat_topics, *self.policy_topics)

    def secrets(self) -> list[str]:
        """Values never to show in clear."""
        return [value for _name, value in secrets_of(self)]


@dataclass(frozen=True)
class IlertSettings:
    """Where ilert is and how to talk to it."""

    api_url: str = DEFAULT_API_URL
    beat_url: str = DEFAULT_BEAT_URL
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class FallbackSettings:
    """The local alarm when ilert stays out of reach (``--fallback_*``, :mod:`ilagent.fallback`);
    a channel is on when its destination is set."""

    __repr__ = masked_repr

    after: float = DEFAULT_FALLBACK_AFTER
    repeat: float = DEFAULT_FALLBACK_REPEAT
    mqtt_topic: str | None = None
    mqtt: MqttSettings | None = None  # the broker the alarm is published at (with mqtt_topic)
    webhook: str | None = secret_field("fallback_webhook")  # its URL may hold a token
    smtp_host: str | None = None
    smtp_port: int = DEFAULT_SMTP_PORT
    mail_from: str = ""
    mail_to: tuple[str, ...] = ()
    timeout: float = DEFAULT_FALLBACK_TIMEOUT

    @property
    def channels(self) -> tuple[str, ...]:
        """The configured channels, of ``mqtt``, ``webhook`` and ``mail``."""
        return tuple(name for name, on in (("mqtt", self.mqtt_topic and self.mqtt),
                                           ("webhook", self.webhook),
                                           ("mail", self.smtp_host and self.mail_to)) if on)


Network = IPv4Network | IPv6Network


@dataclass(frozen=True)
class HttpSettings:
    """The daemon's own HTTP server (``-p``) and who may use it."""

    __repr__ = masked_repr

    port: int
    host: str = DEFAULT_HTTP_HOST
    tokens: tuple[str, ...] = secret_field("http_token", default=())  # any of them is valid
    token_file: str | None = None  # more valid tokens, one a line, read again every 10 s
    # --http_allow; None (not given): loopback only without a token, every address with one
    allow: tuple[Network, ...] | None = None
    rate_limit: int = DEFAULT_HTTP_RATE_LIMIT  # requests a minute per client address; 0: off
    max_body: int = DEFAULT_HTTP_MAX_BODY
    # off: only the probes and /metrics, no event intake and no spool file (--intake off)
    intake: bool = True

    @property
    def token_required(self) -> bool:
        """True when a bearer token is required (given, or a token file, even an empty one)."""
        return bool(self.tokens) or self.token_file is not None

    def secrets(self) -> list[str]:
        """Values never to show in clear (the token file's are registered as it is read)."""
        return [value for _name, value in secrets_of(self)]


@dataclass(frozen=True)
class DrillSettings:
    """Fire drills (``--drill_*``, :mod:`ilagent.drills`): what each drill sends, through which
    sources, and the heartbeat it proves."""

    __repr__ = masked_repr

    interval: float  # between drills; 0 with ``once`` (``ilagent drill``)
    timeout: float  # the deadline of each source's drill, from its start
    message: bytes  # the user's sample message (--drill_message), read at start
    heartbeat: str | None = secret_field("drill_heartbeat")
    kafka_topic: str | None = None
    mqtt_topic: str | None = None
    intake: bool = False
    once: bool = False  # one drill now, then stop (``ilagent drill``)

    @property
    def sources(self) -> tuple[str, ...]:
        """The drilled sources, by their metric label."""
        return tuple(name for name, on in (("kafka", self.kafka_topic), ("mqtt", self.mqtt_topic),
                                           ("http", self.intake)) if on)


@dataclass(frozen=True)
class DaemonConfig:
    """Everything ``ilagent daemon`` runs with."""

    __repr__ = masked_repr  # keys never in clear, even in a debug dump

    ilert: IlertSettings = field(default_factory=IlertSettings)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    rate_limit_per_key: int = DEFAULT_RATE_LIMIT_PER_KEY
    rate_limit_total: int = DEFAULT_RATE_LIMIT_TOTAL
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    circuit_failures: int = DEFAULT_CIRCUIT_FAILURES
    circuit_probe_interval: float = DEFAULT_CIRCUIT_PROBE_INTERVAL
    max_event_age: float = 0.0  # 0: off; else ALERTs older than this are dead-lettered (stale)
    stuck_after: float = DEFAULT_STUCK_AFTER  # a head-of-line wait this long is reported
    http: HttpSettings | None = None
    kafka: KafkaSettings | None = None
    mqtt: MqttSettings | None = None
    rules: MappingRules = field(default_factory=MappingRules)
    heartbeat_key: str | None = secret_field("heartbeat")
    policy: PolicyRules = field(default_factory=PolicyRules)
    api_key: str | None = secret_field("ilert_api_key")  # ilert user API key (policy sync)
    heartbeat_interval: float = HEARTBEAT_INTERVAL
    drill: DrillSettings | None = None  # fire drills (--drill_interval); None: off
    db_file: str = DEFAULT_DB_FILE
    # bytes the spool's rows may hold; None: 1 GiB or half the free space at start if less
    spool_max_bytes: int | None = None
    # the TOML file whose [[route]]s map the events (read again on SIGHUP); None: the flags map
    config_file: str | None = None
    fallback: FallbackSettings | None = None  # None: no local alarm channel configured
    journal: str | None = None  # the journal file (--journal); None: no journal
    journal_max_bytes: int = DEFAULT_JOURNAL_MAX_MB * 1024 * 1024
    # the broker's ack an intake event waits for with --spool kafka:TOPIC (kafka.spool_topic)
    spool_produce_timeout: float = DEFAULT_SPOOL_PRODUCE_TIMEOUT

    def validate(self) -> None:
        """Refuse combinations that cannot work, with a message naming the flag."""
        if (self.http is None and self.kafka is None and self.mqtt is None
                and self.heartbeat_key is None):
            raise ConfigError("nothing to run: give --port, --kafka_brokers, --mqtt_host or "
                              "--heartbeat")
        if (self.http is not None and not self.http.intake and self.kafka is None
                and self.mqtt is None and self.heartbeat_key is None):
            raise ConfigError("nothing to run: with --intake off the HTTP server only answers "
                              "probes; give --kafka_brokers, --mqtt_host or --heartbeat too")
        if self.kafka is not None:
            if not self.kafka.topics:
                raise ConfigError("--kafka_brokers needs at least one topic: "
                                  "--event_topic, --heartbeat_topic or --policy_topic")
            if self.kafka.offset_reset not in ("earliest", "latest"):
                raise ConfigError("--kafka_offset_reset must be earliest or latest")
            for name, _value in self.kafka.extra:
                if name in FORBIDDEN_KAFKA_PROPERTIES:
                    raise ConfigError(f"--kafka_config {name} is not allowed: "
                                      f"{FORBIDDEN_KAFKA_PROPERTIES[name]}")
        if self.http is not None and not 0 < self.http.port < 65536:
            raise ConfigError(f"--port {self.http.port} is not a TCP port")
        if self.max_in_flight < 1:
            raise ConfigError("--max_in_flight must be at least 1")
        if self.circuit_failures < 1:
            raise ConfigError("--circuit_failures must be at least 1")
        if self.circuit_probe_interval <= 0:
            raise ConfigError("--circuit_probe_interval must be more than 0 seconds")
        if self.kafka is not None and self.kafka.max_buffered < 1:
            raise ConfigError("--max_buffered must be at least 1")
        if self.rate_limit_per_key < 0 or self.rate_limit_total < 0:
            raise ConfigError("rate limits must be 0 (off) or positive")
        if self.fallback is not None and min(self.fallback.after, self.fallback.repeat) < 1:
            raise ConfigError("--fallback_after and --fallback_repeat must be at least 1 second")
        for url, flag in ((self.ilert.api_url, "--ilert_api_url"),
                          (self.ilert.beat_url, "--ilert_beat_url")):
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"{flag} must be an http:// or https:// URL, got {url!r}")


def default_journal(db_file: str) -> str:
    """The journal file a daemon keeps beside its spool file (and ``trace`` reads by default)."""
    return db_file + JOURNAL_SUFFIX


def load_toml(path: str) -> dict[str, Any]:
    """The settings of a TOML file; ``ConfigError`` when it cannot be read or parsed."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"the config file {path} is not valid TOML: not UTF-8 text") from None
