"""Where each setting comes from: the command line, the environment, a TOML file, or the default.

Precedence, highest first:

=====================================  ==========================================
flag on the command line               ``--kafka_brokers b:9092``
``ILAGENT_<OPTION>``                   ``ILAGENT_KAFKA_BROKERS=b:9092``
ilert's variables (kept as aliases)    ``ILERT_API_URL``, ``ILERT_BEAT_URL``, ``ILERT_INTEGRATION_KEY``,
                                       ``ILERT_API_KEY``
TOML file (``--config``, ``ILAGENT_CONFIG``)  ``kafka_brokers = "b:9092"``
built-in default                       shown in ``--help``
=====================================  ==========================================

Kubernetes puts a Service's address into every pod of its namespace as ``<NAME>_SERVICE_HOST``,
``<NAME>_SERVICE_PORT[_<PORT NAME>]``, ``<NAME>_PORT=tcp://…`` and ``<NAME>_PORT_<N>_<PROTO>[_…]``:
a Service named ``ilagent`` makes ``ILAGENT_PORT=tcp://10.0.0.1:8977``. Those shapes are never
settings. Any other ``ILAGENT_*`` variable that names no option gets a warning naming the
closest one (a typo, ignored; the same typo in the TOML file is refused).

Option names are the long options with underscores (``-f/--file`` is ``file``). A list given on
the command line replaces the environment's and the file's. In the environment a list is split
on commas (a value starting with ``^``, a topic regex, is not split) and ``ILAGENT_KAFKA_CONFIG``
holds ``key=value`` pairs separated by ``;``. In TOML, lists are arrays and ``kafka_config`` is a
table. Confirmation and action flags (``--yes``, ``--all``) and names two commands use with
different meanings (the sandbox's ``--port``, ``map``'s input) are never read from either.
The environment is read after parsing, so ``--help`` shows the built-in defaults only.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ilagent.config import ROUTE_TABLE, load_toml
from ilagent.errors import ConfigError

ENV_PREFIX = "ILAGENT_"
CONFIG_ENV = "ILAGENT_CONFIG"
ALIASES = {
    "ilert_api_url": "ILERT_API_URL",
    "ilert_beat_url": "ILERT_BEAT_URL",
    "integration_key": "ILERT_INTEGRATION_KEY",
    "ilert_api_key": "ILERT_API_KEY",
}
# options no environment or file may set: confirmations, actions, and what the command line
# itself is (which config file, what to show)
NEVER = frozenset({"help", "version", "config", "json", "yes", "all", "command", "action"})
_SERVICE_NAME = re.compile(r".+_SERVICE_(HOST|PORT(_[A-Z0-9_]+)?)")
_SERVICE_PORT = re.compile(r".+_PORT(_\d+_(TCP|UDP|SCTP))?")
_SERVICE_PORT_PART = re.compile(r".+_PORT_\d+_(TCP|UDP|SCTP)_(PROTO|PORT|ADDR)")
_SERVICE_URL = re.compile(r"(tcp|udp|sctp)://", re.IGNORECASE)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass
class Sources:
    """Each resolved option's origin: ``flag``, ``env NAME``, ``file PATH`` or ``default``."""

    of: dict[str, str] = field(default_factory=dict)
    config_file: str | None = None
    # what the command should log once logging is set up (unknown ILAGENT_* variables)
    warnings: list[str] = field(default_factory=list)
    # the file's kafka_config table: merged under --kafka_config, never replaced by it
    file_kafka_config: list[tuple[str, str]] = field(default_factory=list)
    # the file's [[route]] tables as TOML read them (checked by ilagent.mapping.routes)
    route_tables: list[Any] | None = None


def is_service_link(variable: str, value: str) -> bool:
    """True for a variable of the shapes Kubernetes injects for a Service (module docstring)."""
    return bool(_SERVICE_NAME.fullmatch(variable) or _SERVICE_PORT_PART.fullmatch(variable)
                or (_SERVICE_PORT.fullmatch(variable) and _SERVICE_URL.match(value)))


def unknown_variables(environ: Mapping[str, str], known: set[str]) -> list[str]:
    """A warning for each ``ILAGENT_*`` variable that names no option and is no Service link."""
    names = sorted([CONFIG_ENV, *(ENV_PREFIX + name.upper() for name in known)])
    warnings = []
    for variable in sorted(environ):
        if (not variable.startswith(ENV_PREFIX) or variable in names
                or is_service_link(variable, environ[variable])):
            continue
        close = difflib.get_close_matches(variable, names, n=1, cutoff=0.8)
        hint = f" (did you mean {close[0]}?)" if close else ""
        warnings.append(f"{variable} is not an ilagent setting{hint}; ignored")
    return warnings


def long_name(action: argparse.Action) -> str:
    """The option's long name with underscores (``--kafka_brokers`` → ``kafka_brokers``)."""
    longs = [s for s in action.option_strings if s.startswith("--") and "-" not in s[2:]]
    return (longs or [s for s in action.option_strings if s.startswith("--")])[0][2:].replace(
        "-", "_")


def settable(parser: argparse.ArgumentParser,
             only: frozenset[str] | None = None) -> dict[str, argparse.Action]:
    """The options of ``parser`` that the environment and a file may set, by long name
    (of those, with ``only``, the ones named there)."""
    actions = {long_name(a): a for a in parser._actions
               if a.option_strings and a.help != argparse.SUPPRESS and a.dest not in NEVER
               and not a.dest.startswith("sub_")}  # -v/-f/--config after the command
    return {name: a for name, a in actions.items()
            if name not in NEVER and (only is None or name in only)}


def given(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """The dests of the options that appear on the command line ``argv``."""
    seen = set()
    for action in parser._actions:
        for option in action.option_strings:
            if any(token == option or token.startswith(option + "=")
                   or (len(option) == 2 and token.startswith(option) and not
                       token.startswith("--"))
                   for token in argv):
                seen.add(action.dest)
    return seen


def resolve(
    args: argparse.Namespace,
    parsers: Sequence[tuple[argparse.ArgumentParser, frozenset[str] | None]],
    argv: Sequence[str],
    *,
    known: set[str],
    environ: Mapping[str, str] | None = None,
) -> Sources:
    """Fill ``args`` from the environment and the TOML file where no flag was given.

    ``parsers`` are the top-level parser and the command's, each with the names it may take
    from outside (None: all); ``known`` are the option names of every command (a TOML key
    outside them is a typo and refused).
    """
    environ = os.environ if environ is None else environ
    sources = Sources(warnings=unknown_variables(environ, known))
    path = (getattr(args, "sub_config", None) or getattr(args, "config", None)
            or environ.get(CONFIG_ENV) or None)
    document: dict[str, Any] = {}
    if path:
        document = load_toml(path)
        sources.config_file = path
        unknown = sorted(set(document) - known - {ROUTE_TABLE})
        if ROUTE_TABLE in document:
            sources.route_tables = document[ROUTE_TABLE]
        if unknown:
            close = difflib.get_close_matches(unknown[0], [*known, ROUTE_TABLE], n=1,
                                              cutoff=0.8)
            hint = (f" (did you mean {'[[route]]' if close[0] == ROUTE_TABLE else close[0]}?)"
                    if close else "")
            raise ConfigError(f"{path}: unknown setting {', '.join(map(repr, unknown))}{hint}")
    for parser, only in parsers:
        on_line = given(parser, argv)
        for name, action in settable(parser, only).items():
            if name == "kafka_config" and name in document:
                sources.file_kafka_config = _from_toml(name, action, document[name], path)
            if action.dest in on_line:
                sources.of[action.dest] = "flag"
                continue
            origin, value = _from_environment(name, action, environ)
            if origin is None and name in document and name != "kafka_config":
                origin, value = f"file {path}", _from_toml(name, action, document[name], path)
            if origin is None:
                sources.of.setdefault(action.dest, "default")
                continue
            setattr(args, action.dest, value)
            sources.of[action.dest] = origin
    return sources


def _from_environment(name: str, action: argparse.Action,
                      environ: Mapping[str, str]) -> tuple[str | None, Any]:
    for variable in (ENV_PREFIX + name.upper(), ALIASES.get(name)):
        if variable and environ.get(variable) and not is_service_link(variable,
                                                                        environ[variable]):
            return f"env {variable}", _convert(action, environ[variable], variable)
    return None, None


def _from_toml(name: str, action: argparse.Action, value: Any, path: str | None) -> Any:
    where = f"{path}: {name}"
    if name == "kafka_config":
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table of librdkafka properties")
        return [(str(k), _scalar(v, where)) for k, v in value.items()]
    if isinstance(action, argparse._AppendAction):
        items = value if isinstance(value, list) else [value]
        return [_convert(action, _scalar(v, where), where, single=True) for v in items]
    if isinstance(action, argparse._StoreTrueAction):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false")
        return value
    return _convert(action, _scalar(value, where), where, single=True)


def _scalar(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and "\x00" in value:  # no command line or variable can hold one
        raise ConfigError(f"{where} must not contain a NUL character")
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ConfigError(f"{where} must be a string or a number")


def _convert(action: argparse.Action, text: str, where: str, *, single: bool = False) -> Any:
    """One value of an option, converted and checked as its flag would be."""
    if isinstance(action, argparse._StoreTrueAction):
        lowered = text.strip().lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        raise ConfigError(f"{where}: {text!r} is not true or false")
    if isinstance(action, argparse._CountAction):
        return _typed(int, text, where)
    if isinstance(action, argparse._AppendAction) and not single:
        if action.dest == "kafka_config":
            parts = [p for p in text.split(";") if p.strip()]
        elif text.startswith("^"):
            parts = [text]
        else:
            parts = [p.strip() for p in text.split(",") if p.strip()]
        return [_checked(action, part, where) for part in parts]
    return _checked(action, text, where)


def _checked(action: argparse.Action, text: str, where: str) -> Any:
    value = _typed(action.type, text, where) if callable(action.type) else text
    if action.choices is not None and value not in action.choices:
        raise ConfigError(f"{where}: {text!r} is not one of {', '.join(map(str, action.choices))}")
    return value


def _typed(convert: Any, text: str, where: str) -> Any:
    try:
        return convert(text)
    except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
