"""``ilagent config show [daemon options…]``: the effective configuration and where each value
came from (flag, environment, file, default), every secret masked as it is everywhere
(:mod:`ilagent.secret_options`); ``--json`` for tools."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ilagent.commands import daemon, kafka_options
from ilagent.commands.common import (
    Parser,
    Subparsers,
    add_global_options,
    routes_of,
    secret_values,
)
from ilagent.commands.sources import Sources, settable
from ilagent.logs import hide_secrets, mask_key
from ilagent.secret_options import register_secrets, shown, shown_property


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
    kafka = kafka_options.kafka_properties(args, sources) if args.kafka_brokers else {}
    # as the daemon would: a value too short to be masked in its log lines is warned of
    register_secrets(secret_values(args, [*sources.file_kafka_config, *kafka.items()]))
    settings = []
    for name, action in settable(parser).items():
        value = getattr(args, action.dest, None)
        if name == "kafka_config":
            continue
        settings.append({"name": name, "value": _shown(name, value),
                         "source": sources.of.get(action.dest, "default")})
    properties = [{"name": key, "value": shown_property(key, value),
                   "source": _property_source(key, args, sources)}
                  for key, value in kafka.items()]
    routes: list[dict[str, Any]] = [{"name": r.name, "kafkaTopics": list(r.kafka_topics),
               "mqttTopics": list(r.mqtt_topics), "conditions": [c.text for c in r.conditions],
               "integrationKey": mask_key(r.integration_key) if r.integration_key
               else r.key_field or "the message's own"}
              for r in routes_of(args, sources)]
    lines = []
    if args.json:
        lines.append(json.dumps({"configFile": sources.config_file, "settings": settings,
                                 "kafkaProperties": properties, "routes": routes}, indent=2))
    else:
        if sources.config_file:
            lines.append(f"# config file: {sources.config_file}")
        width = max(len(s["name"]) for s in settings)
        lines += [f"{item['name']:<{width}}  {_text(item['value'])}  ({item['source']})"
                  for item in settings]
        if properties:
            lines.append("# librdkafka properties (besides ilagent's own)")
            lines += [f"{item['name']} = {item['value']}  ({item['source']})"
                      for item in properties]
        if routes:
            lines.append(f"# routes of {sources.config_file} (the mapping flags do not apply)")
            for r in routes:
                reads = ", ".join([*r["kafkaTopics"], *r["mqttTopics"]]) or "every event topic"
                takes = " and ".join(r["conditions"]) or "every message"
                lines.append(f"{r['name']}: {reads}; {takes}; to {r['integrationKey']}")
    # a secret inside a value that is not one itself (a URL with a password) is masked too
    print(hide_secrets("\n".join(lines)))
    return 0


def _shown(name: str, value: Any) -> Any:
    """A setting's value as ``config show`` shows it."""
    return shown(name, value)


def _property_source(key: str, args: argparse.Namespace, sources: Sources) -> str:
    for option, prop in kafka_options.FIRST_CLASS.items():
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

