"""The README's option reference cannot drift from the parser: every option is documented,
and every option the README names exists."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ilagent.cli import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"


def options() -> dict[str, set[str]]:
    """Long options (underscore spelling) of each command, and of the top level ("")."""
    parser = build_parser()
    found = {"": {s for a in parser._actions for s in a.option_strings}}
    for name, command in parser.commands.items():  # type: ignore[attr-defined]
        found[name] = {s for a in command._actions for s in a.option_strings
                       if s.startswith("--") and "-" not in s[2:]}
    return found


def test_every_option_is_in_the_readme() -> None:
    """Each long option of every command appears in the README."""
    text = README.read_text()
    missing = sorted({o for opts in options().values() for o in opts
                      if o.startswith("--") and o not in ("--help", "--version") and o not in text})
    assert missing == []


def test_every_option_the_readme_names_exists() -> None:
    """An option in the README that no command has is a stale line."""
    known = {o for opts in options().values() for o in opts} | {"--help", "--version", "--yes",
                                                                "--all", "--limit", "--json"}
    named = {n.replace("-", "_").replace("__", "--", 1)
             for n in re.findall(r"`(--[a-z][a-z0-9_-]*)", README.read_text())
             if not n.endswith("_")}  # `--rate_limit_*` names a family
    assert sorted(named - known) == []


def _parser_of(words: list[str]) -> argparse.ArgumentParser | None:
    """The parser that reads the options of ``ilagent WORDS…`` (the action's for ``queue`` and
    ``config``), or None when the words name no command."""
    parser = build_parser()
    commands = parser.commands  # type: ignore[attr-defined]
    if len(words) < 2 or words[1] not in commands:
        return None
    command = commands[words[1]]
    if words[1] == "queue" and len(words) > 2:
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction) and words[2] in action.choices:
                return action.choices[words[2]]  # type: ignore[no-any-return]
    return command  # type: ignore[no-any-return]


def test_every_command_line_in_the_docs_uses_options_its_command_has() -> None:
    """`ilagent queue list --dead` and the like: an option the named command does not take is a
    stale line (in backticks, also across a line break, and in code blocks)."""
    docs = [README, *sorted((README.parent / "docs").glob("*.md"))]
    wrong = []
    for path in docs:
        text = path.read_text()
        lines = re.findall(r"`(ilagent [^`]+)`", text) + re.findall(r"^\s*(ilagent .+)$", text,
                                                                    re.MULTILINE)
        for line in lines:
            words = line.split()
            parser = _parser_of(words)
            if parser is None:
                continue
            known = {s for a in parser._actions for s in a.option_strings}
            known |= {s for a in build_parser()._actions for s in a.option_strings}
            for word in words:
                option = re.sub(r"[\[\]|]|=.*", "", word)
                if option.startswith("--") and len(option) > 2 and option not in known:
                    wrong.append(f"{path.name}: {option} in `{' '.join(words)}`")
    assert wrong == []
