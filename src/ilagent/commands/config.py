"""``ilagent config show [daemon options…]``: the effective configuration and where each value
came from (flag, environment, file, default), every secret masked; ``--json`` for tools."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ilagent.commands import daemon
from ilagent.commands.common import Parser, Subparsers, add_global_options
from ilagent.commands.sources import Sources, settable
from ilagent.config import is_secret_property
from ilagent.logs import mask_key

PASSWORDS = frozenset({"http_token", "kafka_sasl_password", "kafka_ssl_key_password",
                       "mqtt_password", "ilert_api_key"})
KEYS = frozenset({"event_key", "heartbeat"})  # shown with their last 4 characters, as in logs


def add_parser(sub: Subparsers) -> Parser:
    """Add ``config show``, which takes every option of ``daemon``."""
    config: Parser = sub.add_parser(
        "config", help="show the effective daemon configuration",
        description="Show what ilagent daemon would run with: every setting, its value and "
                    "where it came from (flag, environment, file, default), secrets masked.",
        epilog="example: ILAGENT_KAFKA_BROKERS=b:9092 ilagent --config ilagent.toml config show")
    actions = config.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser,
                                    required=True)
    show: Parser = actions.add_parser(
        "show", help="each setting with its value and where it came from (secrets masked)",
        epilog="example: ilagent config show --config /etc/ilagent/ilagent.toml -p 8977\n"
               "         ILAGENT_KAFKA_BROKERS=b:9092 ilagent config show --json")
    add_global_options(show)
    show.add_argument("--json", action="store_true", help="one JSON object")
    daemon.add_options(show)
    return show


def run(args: argparse.Namespace) -> int:
    """Print the configuration the daemon would run with."""
    sources: Sources = getattr(args, "sources", None) or Sources()
    parser: argparse.ArgumentParser = args.parser
    settings = []
    for name, action in settable(parser).items():
        value = getattr(args, action.dest, None)
        if name == "kafka_config":
            continue
        settings.append({"name": name, "value": _shown(name, value),
                         "source": sources.of.get(action.dest, "default")})
    properties = []
    if args.kafka_brokers:
        for key, value in daemon.kafka_properties(args, sources).items():
            properties.append({"name": key, "value": _masked_property(key, value),
                               "source": _property_source(key, args, sources)})
    if args.json:
        json.dump({"configFile": sources.config_file, "settings": settings,
                   "kafkaProperties": properties}, sys.stdout, indent=2)
        print()
        return 0
    if sources.config_file:
        print(f"# config file: {sources.config_file}")
    width = max(len(s["name"]) for s in settings)
    for item in settings:
        print(f"{item['name']:<{width}}  {_text(item['value'])}  ({item['source']})")
    if properties:
        print("# librdkafka properties (besides ilagent's own)")
        for item in properties:
            print(f"{item['name']} = {item['value']}  ({item['source']})")
    return 0


def _shown(name: str, value: Any) -> Any:
    if value and name in PASSWORDS:
        return "********"
    if value and name in KEYS:
        return mask_key(str(value))
    return value


def _masked_property(key: str, value: str) -> str:
    return "********" if is_secret_property(key) else value


def _property_source(key: str, args: argparse.Namespace, sources: Sources) -> str:
    for option, prop in daemon.FIRST_CLASS.items():
        if prop == key and getattr(args, option):
            return f"--{option} ({sources.of.get(option, 'flag')})"
    if key in dict(args.kafka_config):
        return f"--kafka_config ({sources.of.get('kafka_config', 'flag')})"
    if key in dict(sources.file_kafka_config):
        return f"kafka_config table of {sources.config_file}"
    return f"--kafka_config_file {args.kafka_config_file}"


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "-"
    return "-" if value is None else str(value)

