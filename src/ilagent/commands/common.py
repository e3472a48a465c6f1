"""What every subcommand's options share: the parser class, value types and option groups.

Compatible with ilagent 0.9: long options keep their underscore spelling (``--kafka_brokers``)
and each is also accepted dashed (``--kafka-brokers``). A usage error is one line on stderr and
exit code 2; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar
from urllib.parse import urlsplit

from ilagent.commands.sources import Sources
from ilagent.config import (
    DEFAULT_API_URL,
    DEFAULT_BEAT_URL,
    DEFAULT_DB_FILE,
    DEFAULT_MAP_KEY_EMAIL,
    DEFAULT_MAP_KEY_SHIFT,
    DEFAULT_TIMEOUT,
    MappingRules,
    PolicyRules,
)
from ilagent.errors import EXIT_USAGE, ConfigError
from ilagent.logs import register_secret
from ilagent.secret_options import SECRET_OPTIONS

if TYPE_CHECKING:
    from ilagent.mapping.routes import Route


class HelpFormatter(argparse.HelpFormatter):
    """Descriptions are reflowed; an example line (``example: …``, or indented under one) is
    kept as written, so two commands never run together and each can be copied whole."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(
            indent + line if line.startswith(("example", " ")) else
            super(HelpFormatter, self)._fill_text(line, width, indent)
            for line in text.splitlines())


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors and dashed aliases for every underscore option; no
    abbreviated long options (they would make every new option a breaking change)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
        self._tokens = list(args[0] if args and args[0] else ())  # for error(): what it got
        return super().parse_known_args(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        word = self._misplaced(message)
        if word:  # `ilagent config --config f`: the file's name was taken for the action
            message += (f"; the {word.lower()} comes first, then its options: {self.prog} "
                        f"{word} [options]")
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")

    def _misplaced(self, message: str) -> str | None:
        """COMMAND or ACTION when ``message`` refuses as one of them the value of an option
        this parser does not know (the option was given before the command or action)."""
        found = re.match(r"argument (COMMAND|ACTION): invalid choice: '(.*)' \(", message)
        tokens: list[str] = getattr(self, "_tokens", [])
        if found is None or found[2] not in tokens[1:]:
            return None
        before = tokens[tokens.index(found[2]) - 1]
        known = before in self._option_string_actions
        return found[1] if before.startswith("-") and not known else None

    def add_argument(self, *names: Any, **kwargs: Any) -> argparse.Action:
        return super().add_argument(*names, *_dashed(names), **kwargs)

    def add_argument_group(self, *args: Any, **kwargs: Any) -> Any:
        group = super().add_argument_group(*args, **kwargs)
        add = group.add_argument
        group.add_argument = lambda *names, **kw: add(*names, *_dashed(names), **kw)  # type: ignore[method-assign]
        return group


Subparsers = Any  # argparse's private _SubParsersAction
LARGEST = 2**53  # no count or number of seconds an option takes is larger (exact as a float)
N = TypeVar("N", int, float)


def _dashed(names: Sequence[Any]) -> list[str]:
    """The dashed spelling of each underscore long option (``--kafka_brokers`` → ``--kafka-brokers``)."""
    return [n.replace("_", "-") for n in names
            if isinstance(n, str) and n.startswith("--") and "_" in n]


def _not_negative(convert: Callable[[str], N], what: str) -> Callable[[str], N]:
    """An argparse type: ``convert``'s number, refused with one line when it is not ≥ 0."""

    def parse(text: str) -> N:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if value != value:  # NaN
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        if value < 0:
            raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
        if value > LARGEST:  # beyond what SQLite, timers and counters take
            raise argparse.ArgumentTypeError(f"{text!r} is too large")
        return value

    return parse


positive_int = _not_negative(int, "a whole number")  # a whole number ≥ 0
seconds = _not_negative(float, "a number of seconds")  # a number of seconds ≥ 0


def positive_seconds(text: str) -> float:
    """A number of seconds > 0 (where 0 has no meaning that could be intended)."""
    value = seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return value


def more_than_zero(text: str) -> int:
    """A whole number ≥ 1."""
    value = positive_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def port(text: str) -> int:
    """A TCP port, 1 to 65535."""
    value = positive_int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port")
    return value


def address_list(text: str) -> str:
    """Addresses or CIDR networks, comma-separated (``--http_allow``): each checked, the list
    returned as given, trimmed (see :func:`networks`)."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("no address given")
    for part in parts:
        try:
            ipaddress.ip_network(part)
        except ValueError:
            if "/" in part and _is_network(part):
                meant = ipaddress.ip_network(part, strict=False)
                raise argparse.ArgumentTypeError(
                    f"{part!r} has host bits set: did you mean {meant}?") from None
            raise argparse.ArgumentTypeError(
                f"{part!r} is not an address or a CIDR network (e.g. 192.0.2.7, 10.0.0.0/8, "
                "::1)") from None
    return ",".join(parts)


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def networks(values: Sequence[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The networks of checked :func:`address_list` values, in order, without repeats."""
    return tuple(dict.fromkeys(ipaddress.ip_network(part) for value in values
                               for part in value.split(",")))


_SIZE = re.compile(r"(\d+)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)


def byte_size(text: str) -> int:
    """A number of bytes ≥ 1, optionally with K, M, G or T (powers of 1024: ``512MiB``, ``1G``)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size in bytes (e.g. 300000, 64K, 512MiB, 1G)")
    value = int(match.group(1)) << 10 * " KMGT".index(match.group(2).upper() or " ")
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1 byte")
    return value


def key_value(text: str) -> tuple[str, str]:
    """``KEY=VALUE``, the key stripped."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key.strip(), value


def add_global_options(parser: Parser) -> None:
    """-v and -f are global in ilagent, so they may also follow the subcommand."""
    parser.add_argument("-v", "--verbose", action="count", dest="sub_verbose", default=0,
                        help="more logging: -vv info, -vvv debug (also before the command)")
    parser.add_argument("-f", "--file", dest="sub_db_file", metavar="FILE",
                        help="SQLite file of the daemon's queue (default ./ilagent.db3)")
    parser.add_argument("--config", dest="sub_config", metavar="FILE",
                        help="TOML file with settings (env ILAGENT_CONFIG)")


def db_file(args: argparse.Namespace) -> str:
    """The SQLite file: ``-f`` after the subcommand (or ``queue``'s action), else before it,
    else the default."""
    return str(getattr(args, "sub_db_file", None) or getattr(args, "queue_db_file", None)
               or args.db_file or DEFAULT_DB_FILE)


def secret_values(args: argparse.Namespace,
                  properties: Iterable[tuple[str, str]] = ()) -> list[tuple[str, Any]]:
    """Each secret option the command has, with its value, then the librdkafka properties
    (``--kafka_config``'s and ``properties``) for :func:`~ilagent.secret_options.register_secrets`
    to pick the secret ones of."""
    return [*((name, getattr(args, name)) for name in SECRET_OPTIONS if hasattr(args, name)),
            *(getattr(args, "kafka_config", None) or ()), *properties]


def check_url(url: str, option: str) -> None:
    """An ilert URL must be http(s); a path without /api is most likely a mistake (a warning:
    reverse proxies exist)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{option} must be an http:// or https:// URL, got {url!r}")
    if "/api" not in parts.path:
        logging.getLogger("ilagent").warning(
            "%s %s has no /api in its path: ilert's URLs end in /api", option, url)


def add_ilert_options(parser: Parser) -> Any:
    """Where ilert is: API and heartbeat URLs, request timeout; returns the group."""
    group = parser.add_argument_group("ilert")
    group.add_argument("--ilert_api_url", metavar="URL", default=DEFAULT_API_URL,
                       help="ilert API base URL (env ILERT_API_URL; default %(default)s)")
    group.add_argument("--ilert_beat_url", metavar="URL", default=DEFAULT_BEAT_URL,
                       help="ilert heartbeat ping base URL (env ILERT_BEAT_URL; default %(default)s)")
    group.add_argument("--ilert_timeout", metavar="SECONDS", type=positive_seconds,
                       default=DEFAULT_TIMEOUT,
                       help="timeout of one request to ilert (default %(default)s)")
    return group


def add_policy_options(parser: Parser) -> None:
    """ilagent 0.9's policy-message flags (``daemon`` and ``map``)."""
    group = parser.add_argument_group("escalation-policy sync (ilagent 0.9 rules)")
    group.add_argument("--policy_routing_keys", metavar="NAMES",
                       help="comma-separated payload fields (top-level names, else dot paths) "
                            "whose values, joined without a separator, are the routing key of "
                            "the escalation policy")
    group.add_argument("--map_key_email", metavar="PATH", default=DEFAULT_MAP_KEY_EMAIL,
                       help="payload field (dot path) with the user's e-mail "
                            "(default %(default)s)")
    group.add_argument("--map_key_shift", metavar="PATH", default=DEFAULT_MAP_KEY_SHIFT,
                       help="payload field (dot path) with the shift: the level's index "
                            "(default %(default)s)")
    group.add_argument("--shift_offset", metavar="N", type=int, default=0,
                       help="added to the shift, e.g. -1 when shifts count from 1 (default 0)")


def _text_options(args: argparse.Namespace, names: Sequence[str]) -> None:
    """Refuse a value that is not text: bytes the shell passed that are not UTF-8 (Python keeps
    them as lone surrogates) would make every event unsendable."""
    for name in names:
        value = getattr(args, name, None)
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ConfigError(f"--{name} {value!r} is not valid UTF-8 text") from None


def policy_rules(args: argparse.Namespace) -> PolicyRules:
    """The policy rules the parsed flags describe."""
    _text_options(args, ("policy_routing_keys", "map_key_email", "map_key_shift"))
    names = tuple(n.strip() for n in (args.policy_routing_keys or "").split(",") if n.strip())
    return PolicyRules(routing_keys=names, map_key_email=args.map_key_email,
                       map_key_shift=args.map_key_shift, shift_offset=args.shift_offset)


def add_mapping_options(parser: Parser) -> None:
    """ilagent 0.9's mapping and filter flags (``daemon`` and ``map``)."""
    group = parser.add_argument_group("mapping and filtering (ilagent 0.9 rules)")
    group.add_argument("--event_key", metavar="KEY",
                       help="use this integration key for every event")
    group.add_argument("--map_key_etype", metavar="PATH",
                       help="payload field (dot path) holding the event type")
    group.add_argument("--map_key_alert_key", metavar="PATH",
                       help="payload field (dot path) holding the alert key")
    group.add_argument("--map_key_summary", metavar="PATH",
                       help="payload field (dot path) holding the summary")
    group.add_argument("--map_val_etype_alert", metavar="VALUE",
                       help="event-type value that means ALERT")
    group.add_argument("--map_val_etype_accept", metavar="VALUE",
                       help="event-type value that means ACCEPT")
    group.add_argument("--map_val_etype_resolve", metavar="VALUE",
                       help="event-type value that means RESOLVE")
    group.add_argument("--filter_key", metavar="KEY",
                       help="only messages with this top-level key are sent")
    group.add_argument("--filter_val", metavar="VALUE",
                       help="with --filter_key: only messages whose key has this string value")
    group.add_argument("--forward_message_payload", action="store_true",
                       help="send the whole message as customDetails")


def mapping_rules(args: argparse.Namespace) -> MappingRules:
    """The mapping rules the flags of :func:`add_mapping_options` describe."""
    if args.filter_val is not None and args.filter_key is None:
        raise ConfigError("--filter_val needs --filter_key (the key whose value it compares)")
    _text_options(args, ("event_key", "map_key_etype", "map_key_alert_key", "map_key_summary",
                         "map_val_etype_alert", "map_val_etype_accept", "map_val_etype_resolve",
                         "filter_key", "filter_val"))
    return MappingRules(
        event_key=args.event_key, map_key_etype=args.map_key_etype,
        map_key_alert_key=args.map_key_alert_key, map_key_summary=args.map_key_summary,
        map_val_etype_alert=args.map_val_etype_alert,
        map_val_etype_accept=args.map_val_etype_accept,
        map_val_etype_resolve=args.map_val_etype_resolve, filter_key=args.filter_key,
        filter_val=args.filter_val, forward_message_payload=args.forward_message_payload)


# the mapping flags a [[route]] replaces: given together, which one maps would be a guess
ROUTE_REPLACES = ("map_key_etype", "map_key_alert_key", "map_key_summary",
                  "map_val_etype_alert", "map_val_etype_accept", "map_val_etype_resolve",
                  "filter_key", "filter_val", "forward_message_payload")


def routes_of(args: argparse.Namespace, sources: Sources) -> tuple[Route, ...]:
    """The ``[[route]]`` s of the config file, checked (none: the flags are the one route);
    ``ConfigError`` for a route that does not load or beside a mapping flag."""
    if sources.route_tables is None:
        return ()
    from ilagent.mapping.route_tables import load_routes  # Jinja2 only for a config with routes

    routes = load_routes(sources.route_tables, where=str(sources.config_file))
    clash = [name for name in ROUTE_REPLACES if getattr(args, name, None) not in (None, False)]
    if clash:
        given = sources.of.get(clash[0], "flag")
        raise ConfigError(f"--{clash[0]} ({given}) and the [[route]] tables of "
                          f"{sources.config_file} both say how to map: each route maps on its "
                          "own; move the flag into the routes, or remove the routes")
    for route in routes:
        register_secret(route.integration_key, key=True)
    return routes


def topics(given: list[str]) -> tuple[str, ...]:
    """Topics of one kind: each given value split on commas, except regexes (``^…``)."""
    out: list[str] = []
    for value in given:
        out += [value] if value.startswith("^") else [t.strip() for t in value.split(",")
                                                      if t.strip()]
    return tuple(dict.fromkeys(out))
