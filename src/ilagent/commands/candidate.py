"""The config a message is read with by ``replay`` and ``trace --offset``, and the baseline
``replay`` compares it with.

The *candidate* is what the daemon would run with given the same options: the mapping flags
(command line, then ``ILAGENT_*`` variables, then the config file's settings) and the config
file's ``[[route]]`` s, the file being ``--config`` or ``ILAGENT_CONFIG``. The *baseline* keeps
every mapping flag given on the command line or in the environment and swaps the file:

* ``--against OLD.toml``: OLD's mapping settings (where no flag or variable gives them) and
  its ``[[route]]`` s; its other settings (brokers, ports…) are not read;
* no ``--against``: no file at all — the flags and variables alone, the way a daemon runs
  without a config file.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ilagent.commands.common import (
    ROUTE_REPLACES,
    mapping_rules,
    policy_rules,
    routes_of,
    topics,
)
from ilagent.commands.sources import Sources
from ilagent.config import ROUTE_TABLE, MappingRules, PolicyRules, load_toml
from ilagent.errors import ConfigError
from ilagent.mapping.reading import Reading, read
from ilagent.mapping.topics import Classifier, Kind, kafka_topics

if TYPE_CHECKING:
    from ilagent.mapping.routes import Route

MAPPING = ("event_key", *ROUTE_REPLACES)  # the options a config file may change
NO_FILE = "the flags alone (no config file)"


@dataclass(frozen=True)
class Candidate:
    """One config to read event-topic messages with: ``name`` says where it comes from."""

    name: str
    rules: MappingRules
    routes: tuple[Route, ...] = ()
    policy: PolicyRules = field(default_factory=PolicyRules)

    def read(self, kind: Kind | None, payload: bytes | None, *, topic: str,
             message_key: bytes | None) -> Reading:
        """What the daemon would make of the message (:func:`ilagent.mapping.reading.read`)."""
        return read(kind, payload, topic=topic, rules=self.rules, policy_rules=self.policy,
                    source="kafka", message_key=message_key, routes=self.routes)


def current(args: argparse.Namespace, sources: Sources) -> Candidate:
    """The config the options describe, as the daemon would run with it."""
    name = f"--config {sources.config_file}" if sources.config_file else NO_FILE
    policy = policy_rules(args) if hasattr(args, "policy_routing_keys") else PolicyRules()
    return Candidate(name, mapping_rules(args), routes_of(args, sources), policy)


def baseline(args: argparse.Namespace, sources: Sources, parser: argparse.ArgumentParser,
             against: str | None) -> Candidate:
    """The config to compare the candidate with (see the module docstring)."""
    base = argparse.Namespace(**vars(args))
    actions = {action.dest: action for action in parser._actions if action.dest in MAPPING}
    origins: dict[str, str] = {}
    for dest, action in actions.items():
        origin = sources.of.get(dest, "default")
        if origin.startswith("file "):  # the candidate's file: not the baseline's
            setattr(base, dest, action.default)
            origin = "default"
        origins[dest] = origin
    if against is None:
        return Candidate(NO_FILE, mapping_rules(base))
    document = load_toml(against)
    for dest, action in actions.items():
        if origins[dest] == "default" and dest in document:
            setattr(base, dest, _toml_value(action, document[dest], f"{against}: {dest}"))
            origins[dest] = f"file {against}"
    tables = document.get(ROUTE_TABLE)
    if tables is not None and not isinstance(tables, list):
        raise ConfigError(f"{against}: [[route]] must be an array of tables")
    old = Sources(of=origins, config_file=against, route_tables=tables)
    return Candidate(f"--against {against}", mapping_rules(base), routes_of(base, old))


def _toml_value(action: argparse.Action, value: Any, where: str) -> Any:
    """A mapping setting of a TOML file, checked as the daemon checks it."""
    if isinstance(action, argparse._StoreTrueAction):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"{where} must be a string or a number")
    return str(value)


def classifier(args: argparse.Namespace, routes: Sequence[Route]) -> Classifier:
    """The daemon's kinds of Kafka topics: events (``-e`` and the routes' topics), then
    heartbeats (``-r``), then policy updates (``--policy_topic``)."""
    events = (*topics(args.event_topic), *(t for r in routes for t in r.kafka_topics))
    return Classifier([
        (Kind.EVENT, kafka_topics(events)),
        (Kind.HEARTBEAT, kafka_topics(topics(getattr(args, "heartbeat_topic", [])))),
        (Kind.POLICY, kafka_topics(topics(getattr(args, "policy_topic", [])))),
    ])
