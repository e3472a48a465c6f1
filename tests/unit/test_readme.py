"""The README's option reference cannot drift from the parser: every option is documented,
and every option the README names exists."""

from __future__ import annotations

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
