"""The Kafka options of ``ilagent daemon`` (and ``config show``): which need a broker, and the
librdkafka properties they, the TOML file's ``kafka_config`` table, ``--kafka_config_file`` and
``--kafka_config`` make together. The connection options (where the cluster is, how to reach it)
are defined once here, for ``daemon`` and ``map --last``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ilagent.commands.common import key_value
from ilagent.commands.sources import Sources
from ilagent.errors import ConfigError
from ilagent.kafka.properties import for_librdkafka, parse_properties

__all__ = ["CONNECTION", "FIRST_CLASS", "KAFKA_ONLY", "add_connection_options", "check_sasl",
           "kafka_properties"]

KAFKA_ONLY = ("kafka_config", "kafka_group_id",
              "kafka_offset_reset", "dlq_topic", "max_buffered", "kafka_config_file",
              "kafka_connect_timeout", "kafka_security_protocol", "kafka_sasl_mechanism",
              "kafka_sasl_username", "kafka_sasl_password", "kafka_ssl_ca", "kafka_ssl_cert",
              "kafka_ssl_key", "kafka_ssl_key_password")


# the options of add_connection_options, by long name
CONNECTION = ("kafka_brokers", "kafka_config", "kafka_config_file", "kafka_security_protocol",
              "kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password",
              "kafka_ssl_ca", "kafka_ssl_cert", "kafka_ssl_key", "kafka_ssl_key_password")
SASL_PROTOCOLS = ("SASL_SSL", "SASL_PLAINTEXT")


def add_connection_options(group: Any) -> None:
    """Where the Kafka cluster is and how to connect to it (:data:`CONNECTION`)."""
    group.add_argument("--kafka_brokers", metavar="HOST:PORT[,…]", help="bootstrap brokers")
    group.add_argument("--kafka_config", action="append", type=key_value, default=[],
                       metavar="KEY=VALUE",
                       help="librdkafka property, e.g. security.protocol=SASL_SSL (repeatable)")
    group.add_argument("--kafka_config_file", metavar="FILE",
                       help="Kafka client settings in Java's client.properties format "
                            "(applied under --kafka_config)")
    group.add_argument("--kafka_security_protocol", type=str.upper,
                       choices=("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
                       help="security.protocol")
    group.add_argument("--kafka_sasl_mechanism", type=str.upper,
                       choices=("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"),
                       help="sasl.mechanism (OAUTHBEARER: its settings via --kafka_config)")
    group.add_argument("--kafka_sasl_username", metavar="NAME", help="sasl.username")
    group.add_argument("--kafka_sasl_password", metavar="PASSWORD",
                       help="sasl.password (better from ILAGENT_KAFKA_SASL_PASSWORD or the "
                            "config file than on the command line)")
    group.add_argument("--kafka_ssl_ca", metavar="PEM", help="ssl.ca.location: CA certificate(s)")
    group.add_argument("--kafka_ssl_cert", metavar="PEM",
                       help="ssl.certificate.location: client certificate (mutual TLS)")
    group.add_argument("--kafka_ssl_key", metavar="PEM",
                       help="ssl.key.location: client private key (mutual TLS)")
    group.add_argument("--kafka_ssl_key_password", metavar="PASSWORD",
                       help="ssl.key.password of an encrypted --kafka_ssl_key")


def check_sasl(properties: dict[str, str]) -> None:
    """SASL without a mechanism (librdkafka would try GSSAPI, which it is rarely built with),
    or a mechanism without SASL (never used): ``ConfigError`` naming the options."""
    protocol = properties.get("security.protocol", "PLAINTEXT").upper()
    mechanism = properties.get("sasl.mechanism") or properties.get("sasl.mechanisms")
    if protocol in SASL_PROTOCOLS and not mechanism:
        raise ConfigError(f"--kafka_security_protocol {protocol} needs --kafka_sasl_mechanism "
                          "(PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER; librdkafka "
                          "would try GSSAPI)")
    if mechanism and protocol not in SASL_PROTOCOLS:
        raise ConfigError(f"--kafka_sasl_mechanism {mechanism} needs --kafka_security_protocol "
                          f"SASL_SSL or SASL_PLAINTEXT (the protocol is {protocol}, which never "
                          "authenticates)")


FIRST_CLASS = {  # option → librdkafka property
    "kafka_security_protocol": "security.protocol",
    "kafka_sasl_mechanism": "sasl.mechanism",
    "kafka_sasl_username": "sasl.username",
    "kafka_sasl_password": "sasl.password",
    "kafka_ssl_ca": "ssl.ca.location",
    "kafka_ssl_cert": "ssl.certificate.location",
    "kafka_ssl_key": "ssl.key.location",
    "kafka_ssl_key_password": "ssl.key.password",
}
FILE_OPTIONS = ("kafka_ssl_ca", "kafka_ssl_cert", "kafka_ssl_key")


def kafka_properties(args: argparse.Namespace, sources: Sources) -> dict[str, str]:
    """librdkafka properties, lowest precedence first: the TOML file's ``kafka_config`` table,
    ``--kafka_config_file``, ``--kafka_config``, the first-class options."""
    merged = dict(sources.file_kafka_config)
    if args.kafka_config_file:
        try:
            text = Path(args.kafka_config_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read --kafka_config_file {args.kafka_config_file}: "
                              f"{exc.strerror}") from None
        try:
            pairs = parse_properties(text)
        except ConfigError as exc:
            raise ConfigError(f"--kafka_config_file {args.kafka_config_file}: {exc}") from None
        merged.update(for_librdkafka(pairs, origin=args.kafka_config_file))
    merged.update(args.kafka_config)
    for option, prop in FIRST_CLASS.items():
        value = getattr(args, option)
        if value:
            if option in FILE_OPTIONS and not os.access(value, os.R_OK):
                raise ConfigError(f"--{option} {value}: the file cannot be read")
            merged[prop] = value
    return merged

