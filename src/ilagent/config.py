"""Configuration of the daemon: frozen dataclasses, built once by the CLI and passed down."""

from __future__ import annotations

from dataclasses import dataclass, field

from ilagent.backoff import RetryPolicy
from ilagent.ilert import DEFAULT_API_URL, DEFAULT_BEAT_URL, DEFAULT_TIMEOUT
from ilagent.kafka import KafkaSettings
from ilagent.logs import mask_key
from ilagent.mapping import MappingRules

DEFAULT_MAX_IN_FLIGHT = 64
DEFAULT_RATE_LIMIT_PER_KEY = 50
DEFAULT_RATE_LIMIT_TOTAL = 700
DEFAULT_SHUTDOWN_TIMEOUT = 10.0
DEFAULT_HTTP_HOST = "0.0.0.0"  # as ilagent, so the port is reachable from outside a container
DEFAULT_HTTP_MAX_BODY = 1024 * 1024
DEFAULT_DB_FILE = "./ilagent.db3"
# Kafka keeps every message until ilert takes it (at-least-once); the HTTP queue gives up
# after this many retries (about 100 minutes at the 60 s cap), so a poison event cannot stay
DEFAULT_KAFKA_MAX_RETRIES = 0
DEFAULT_QUEUE_MAX_RETRIES = 100
HEARTBEAT_INTERVAL = 30.0


class ConfigError(ValueError):
    """A configuration the daemon cannot run with; the CLI prints it as one line, exit 2."""


@dataclass(frozen=True)
class IlertSettings:
    """Where ilert is and how to talk to it."""

    api_url: str = DEFAULT_API_URL
    beat_url: str = DEFAULT_BEAT_URL
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class HttpSettings:
    """The daemon's own HTTP server (``-p``)."""

    port: int
    host: str = DEFAULT_HTTP_HOST
    token: str | None = field(default=None, repr=False)
    max_body: int = DEFAULT_HTTP_MAX_BODY


@dataclass(frozen=True)
class DaemonConfig:
    """Everything ``ilagent daemon`` runs with."""

    ilert: IlertSettings = field(default_factory=IlertSettings)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    rate_limit_per_key: int = DEFAULT_RATE_LIMIT_PER_KEY
    rate_limit_total: int = DEFAULT_RATE_LIMIT_TOTAL
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    http: HttpSettings | None = None
    kafka: KafkaSettings | None = None
    rules: MappingRules = field(default_factory=MappingRules)
    heartbeat_key: str | None = field(default=None, repr=False)
    heartbeat_interval: float = HEARTBEAT_INTERVAL
    db_file: str = DEFAULT_DB_FILE
    queue_max_retries: int = DEFAULT_QUEUE_MAX_RETRIES  # 0 = unlimited; Kafka's is retry's

    def __repr__(self) -> str:  # keys never in clear, even in a debug dump
        return (f"DaemonConfig(ilert={self.ilert!r}, kafka={self.kafka!r}, http={self.http!r}, "
                f"heartbeat_key={mask_key(self.heartbeat_key)!r}, "
                f"max_in_flight={self.max_in_flight})")

    def validate(self) -> None:
        """Refuse combinations that cannot work, with a message naming the flag."""
        if self.http is None and self.kafka is None and self.heartbeat_key is None:
            raise ConfigError("nothing to run: give --port, --kafka_brokers or --heartbeat")
        if self.kafka is not None:
            if not (self.kafka.event_topics or self.kafka.heartbeat_topics):
                raise ConfigError("--kafka_brokers needs at least one topic: "
                                  "--event_topic or --heartbeat_topic")
            if self.kafka.offset_reset not in ("earliest", "latest"):
                raise ConfigError("--kafka_offset_reset must be earliest or latest")
        if self.http is not None and not 0 < self.http.port < 65536:
            raise ConfigError(f"--port {self.http.port} is not a TCP port")
        if self.max_in_flight < 1:
            raise ConfigError("--max_in_flight must be at least 1")
        if self.rate_limit_per_key < 0 or self.rate_limit_total < 0:
            raise ConfigError("rate limits must be 0 (off) or positive")
        for url, flag in ((self.ilert.api_url, "--ilert_api_url"),
                          (self.ilert.beat_url, "--ilert_beat_url")):
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"{flag} must be an http:// or https:// URL, got {url!r}")
