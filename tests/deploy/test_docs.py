"""The documentation site builds with ``mkdocs build --strict`` (broken links, anchors and
snippets fail it), its option reference names every option of every command, the migration
guide names every flag and variable of ilagent 0.9, and no page names an option that is gone."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ilagent.cli import build_parser
from ilagent.commands.sources import settable

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT / "tools"))

from docs_options import is_dashed_alias, render, walk  # noqa: E402

# ilagent 0.9's whole command line and environment (its behaviour reference, §2)
FLAGS_0_9 = {
    "global": ["-v", "--verbose", "-f", "--file", "-h", "--help", "-V", "--version"],
    "event": [
        "-k",
        "--integration_key",
        "-t",
        "--event_type",
        "-s",
        "--summary",
        "-i",
        "--alert_key",
        "-o",
        "--priority",
        "-d",
        "--details",
        "-g",
        "--image",
        "-l",
        "--link",
    ],
    "heartbeat": ["-k", "--integration_key"],
    "daemon": [
        "-p",
        "--port",
        "-b",
        "--heartbeat",
        "-m",
        "--mqtt_host",
        "-q",
        "--mqtt_port",
        "-n",
        "--mqtt_name",
        "--mqtt_username",
        "--mqtt_password",
        "--mqtt_tls",
        "--mqtt_ca",
        "--mqtt_client_cert",
        "--mqtt_client_key",
        "--mqtt_qos",
        "--mqtt_buffer",
        "--mqtt_shared_group",
        "--kafka_brokers",
        "--kafka_group_id",
        "-e",
        "--event_topic",
        "-r",
        "--heartbeat_topic",
        "--event_key",
        "--map_key_etype",
        "--map_key_alert_key",
        "--map_key_summary",
        "--map_val_etype_alert",
        "--map_val_etype_accept",
        "--map_val_etype_resolve",
        "--filter_key",
        "--filter_val",
        "--forward_message_payload",
        "--policy_topic",
        "--policy_routing_keys",
        "--map_key_email",
        "--map_key_shift",
        "--shift_offset",
        "--max_retries",
    ],
}
ENVIRONMENT_0_9 = ["ILERT_INTEGRATION_KEY", "ILERT_API_KEY", "RUST_LOG", "RUST_LOG_STYLE"]


def sections(page: str) -> dict[str, str]:
    """The reference page's sections by heading (`ilagent daemon`, Global options, …)."""
    parts = re.split(r"^## (.+)$", page, flags=re.M)
    return {title.strip("`"): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def undocumented(page: str) -> list[str]:
    """Options and arguments of the parser that the reference page does not name where it
    should: each in its command's section (-v/-f/--config after a command: the global one)."""
    found = sections(page)
    missing = []
    for name, parser in walk(build_parser()):
        section = found.get("Global options" if name == "ilagent" else name)
        if section is None:
            missing.append(f"section {name}")
            continue
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            where = found["Global options"] if action.dest.startswith("sub_") else section
            spellings = [o for o in action.option_strings if not is_dashed_alias(o, action)]
            if not action.option_strings:
                spellings = [str(action.metavar or action.dest.upper())]
            missing += [f"{name} {s}" for s in spellings if f"`{s}" not in where]
    daemon = found["ilagent daemon"]
    missing += [
        f"ILAGENT_{key.upper()}"
        for key in settable(build_parser().commands["daemon"])  # type: ignore[attr-defined]
        if f"`ILAGENT_{key.upper()}`" not in daemon
    ]
    return missing


def test_the_option_reference_documents_every_option() -> None:
    """Every command has a section naming each of its options, and each daemon option's
    environment variable."""
    assert undocumented(render()) == []


def test_the_reference_check_fails_for_a_missing_option() -> None:
    """The check can fail: a reference without the --kafka_brokers row is caught."""
    page = "\n".join(
        line for line in render().splitlines() if not line.startswith("| `--kafka_brokers")
    )
    assert undocumented(page) == [
        "ilagent daemon --kafka_brokers",
        # queue on a Kafka spool: each action reads the group's lag or the DLQ topic
        *(f"ilagent queue {action} --kafka_brokers" for action in
          ("list", "stats", "retry", "purge")),
        "ilagent map --kafka_brokers",  # map --last reads a topic
        "ilagent config show --kafka_brokers",
        "ilagent drill --kafka_brokers",
        "ilagent replay --kafka_brokers",  # replay and trace --offset read a topic too
        "ilagent trace --kafka_brokers",
        "ILAGENT_KAFKA_BROKERS",
    ]


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """mkdocs build --strict: every page, link, anchor and included file resolves, and the
    generated option reference is part of the site."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(tmp_path / "site"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    options = (tmp_path / "site" / "reference" / "options" / "index.html").read_text()
    assert "--kafka_brokers" in options and "ILAGENT_INTAKE" in options
    for page in DOCS.glob("*.md"):
        assert (tmp_path / "site" / (page.stem if page.stem != "index" else "")).is_dir(), page


@pytest.mark.parametrize("command", sorted(FLAGS_0_9))
def test_the_migration_guide_names_every_flag_of_ilagent_0_9(command: str) -> None:
    """Each 0.9 flag, in a table row of the guide's section for its command."""
    guide = (DOCS / "migrating.md").read_text()
    title = {"global": "Global"}.get(command, f"`ilagent {command}`")
    section = guide.split(f"### {title}\n", 1)[1].split("\n##", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    named = {
        flag for row in rows for flag in re.findall(r"`(-{1,2}[A-Za-z_]+)`", row.split("|")[1])
    }
    assert sorted(set(FLAGS_0_9[command]) - named) == []


def test_the_migration_guide_names_every_variable_of_ilagent_0_9() -> None:
    """ILERT_INTEGRATION_KEY, ILERT_API_KEY, RUST_LOG, RUST_LOG_STYLE each have a row."""
    guide = (DOCS / "migrating.md").read_text()
    assert [v for v in ENVIRONMENT_0_9 if f"| `{v}` |" not in guide] == []


def test_no_page_names_an_option_that_does_not_exist() -> None:
    """Options with underscores named on a page (ilagent's spelling) exist in some command —
    the migration guide's 0.9 flags included: every one of them works here."""
    known = {
        o
        for _, parser in walk(build_parser())
        for a in parser._actions
        for o in a.option_strings
    }
    stale = {}
    for page in DOCS.glob("*.md"):
        named = set(re.findall(r"(?<![\w-])(--[a-z]+_[a-z0-9_]*[a-z0-9])(?![\w*-])", page.read_text()))
        if named - known:
            stale[page.name] = sorted(named - known)
    assert stale == {}


def test_relative_links_of_the_readme_exist() -> None:
    """The README, the front door, links into docs/ and deploy/: every such link resolves."""
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((?!https?://|#)([^)#]+)", readme)
    assert links, "the README links into the docs"
    assert [link for link in links if not (ROOT / link).exists()] == []
