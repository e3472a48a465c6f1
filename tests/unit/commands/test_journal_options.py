"""--journal and --journal_max_mb: on beside a spool file by default, a path or off when given."""

from __future__ import annotations

import pytest

from ilagent.cli import build_parser, resolve_options
from ilagent.commands.daemon import daemon_config


def journal_of(*argv: str, environ: dict[str, str] | None = None) -> tuple[str | None, int]:
    parser = build_parser()
    args = parser.parse_args(list(argv))
    config = daemon_config(args, resolve_options(parser, args, list(argv), environ=environ or {}))
    return config.journal, config.journal_max_bytes


@pytest.mark.parametrize(("argv", "journal"), [
    (["-f", "/var/q.db3", "daemon", "-p", "8977"], "/var/q.db3.journal.db"),
    (["daemon", "-p", "8977"], "./ilagent.db3.journal.db"),
    (["daemon", "-p", "8977", "--intake", "off", "--kafka_brokers", "k:9092", "-e", "t"], None),
    (["daemon", "--kafka_brokers", "k:9092", "-e", "t"], None),
    (["daemon", "-m", "broker", "-e", "t", "--mqtt_buffer"], "./ilagent.db3.journal.db"),
    (["daemon", "-p", "8977", "--journal", "off"], None),
    (["daemon", "-p", "8977", "--journal", "OFF"], None),
    (["daemon", "--kafka_brokers", "k:9092", "-e", "t", "--journal", "/j.db"], "/j.db"),
])
def test_where_the_journal_is(argv: list[str], journal: str | None) -> None:
    """Beside the spool file when the daemon keeps one, else off; --journal decides when given."""
    assert journal_of(*argv)[0] == journal


def test_the_cap_and_the_environment() -> None:
    """--journal_max_mb is in MiB (64 by default); ILAGENT_JOURNAL sets the path."""
    assert journal_of("daemon", "-p", "8977")[1] == 64 * 1024 * 1024
    assert journal_of("daemon", "-p", "8977", "--journal_max_mb", "2")[1] == 2 * 1024 * 1024
    assert journal_of("daemon", "-p", "8977", environ={"ILAGENT_JOURNAL": "off"})[0] is None
