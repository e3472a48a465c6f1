"""The option reference of the docs site, generated from ``ilagent``'s argument parser.

``render()`` walks every command and subcommand of :func:`ilagent.cli.build_parser` and writes
one Markdown table per command: each option with its value, default, the environment variable
and TOML key that may set it, and its help text. The MkDocs hook (``tools/mkdocs_hooks.py``)
puts the result at ``reference/options.md`` on every build, so the page cannot drift from the
command line. ``python tools/docs_options.py`` prints it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ilagent.cli import FROM_OUTSIDE, build_parser
from ilagent.commands.sources import ALIASES, CONFIG_ENV, ENV_PREFIX, settable

HEADER = """# Option reference

Every command and option of `ilagent`, generated from its argument parser when the site is
built (`tools/docs_options.py`), so nothing here can be out of date.

- Every long option written with underscores (`--kafka_brokers`) is also accepted with dashes
  (`--kafka-brokers`); long options are never abbreviated.
- **Environment / file** names the `ILAGENT_*` variable and the TOML key (in the file given by
  `--config` or `ILAGENT_CONFIG`) that set the option when the command line does not; see
  [Configuration](../configuration.md) for the precedence and the value formats.
- The global options may also follow the command (`ilagent daemon -v -v …`).
"""


def walk(
    parser: argparse.ArgumentParser, name: str = "ilagent"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Each parser with its full command name, the top level first, nested subcommands too."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from walk(sub, f"{name} {sub_name}")


def is_dashed_alias(option: str, action: argparse.Action) -> bool:
    """``--kafka-brokers`` beside ``--kafka_brokers``: the second spelling of one option."""
    return option.startswith("--") and any(
        other != option and other.replace("_", "-") == option for other in action.option_strings
    )


def documented(action: argparse.Action) -> list[str]:
    """The spellings of an option the reference names (short, long; not the dashed aliases)."""
    return [o for o in action.option_strings if not is_dashed_alias(o, action)]


def _value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.metavar is not None:
        return str(action.metavar)
    if action.choices is not None:
        return "{" + ",".join(map(str, action.choices)) + "}"
    return action.dest.upper()


def _default(action: argparse.Action) -> str:
    value = action.default
    if value in (None, [], argparse.SUPPRESS) or isinstance(
        action, (argparse._StoreTrueAction, argparse._CountAction, argparse._VersionAction)
    ):
        return ""
    return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def _settable(command: str, parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The options of this command the environment and the file may set, by their key."""
    if command == "ilagent":
        return settable(parser)
    word = command.split(" ")[1]
    return settable(parser, FROM_OUTSIDE[word]) if word in FROM_OUTSIDE else {}


def _outside(action: argparse.Action, allowed: dict[str, argparse.Action]) -> str:
    """How the environment and the file may set an option, if at all."""
    if action.dest == "config":
        return f"`{CONFIG_ENV}`"
    keys = [key for key, other in allowed.items() if other is action]
    if not keys:
        return ""
    variables = [f"`{ENV_PREFIX}{keys[0].upper()}`"]
    if keys[0] in ALIASES:
        variables.append(f"`{ALIASES[keys[0]]}`")
    return f"{', '.join(variables)}; file `{keys[0]}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _table(command: str, parser: argparse.ArgumentParser) -> list[str]:
    formatter = parser._get_formatter()
    allowed = _settable(command, parser)
    rows = ["| option | default | environment / file | meaning |", "|---|---|---|---|"]
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.dest.startswith("sub_"):  # -v, -f, --config after the command: global
            continue
        if action.option_strings:
            value = _value(action)
            spelled = ", ".join(f"`{o}{' ' + value if value else ''}`" for o in documented(action))
        else:
            spelled = f"`{action.metavar or action.dest.upper()}` (argument)"
        meaning = formatter._expand_help(action) if action.help else ""
        rows.append(
            f"| {spelled} | {_cell(_default(action))} | "
            f"{_cell(_outside(action, allowed))} | {_cell(meaning)} |"
        )
    return rows


def render() -> str:
    """The whole reference page as Markdown."""
    lines = [HEADER]
    for command, parser in walk(build_parser()):
        subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        title = "Global options" if command == "ilagent" else f"`{command}`"
        lines += [f"## {title}", ""]
        if parser.description and command != "ilagent":
            lines += [parser.description, ""]
        if subcommands and command != "ilagent":
            names = ", ".join(f"`{command} {s}`" for a in subcommands for s in a.choices)
            lines += [f"Subcommands: {names}.", ""]
            if [a for a in parser._actions  # options before the subcommand (`queue -f F list`)
                    if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]:
                lines += [*_table(command, parser), ""]
            continue
        if command != "ilagent" and not [
            a for a in parser._actions if not isinstance(a, argparse._HelpAction)
        ]:
            continue
        lines += [*_table(command, parser), ""]
        if parser.epilog:
            example = parser.epilog.removeprefix("example:").splitlines()
            lines += ["```bash", *(line.strip() for line in example), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render())
