"""`ilagent replay` and `trace --offset` before any broker is asked: times, positions, the
baseline a candidate is compared with, and nothing sent to ilert unless asked."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ilagent.cli import build_parser, main, resolve_options
from ilagent.commands.candidate import NO_FILE, baseline, current
from ilagent.commands.replay import when
from ilagent.commands.trace_offset import position
from ilagent.errors import UsageError

NOW = 1_700_000_000.0


@pytest.mark.parametrize(("text", "ms"), [
    ("90s", (NOW - 90) * 1000), ("30m", (NOW - 1800) * 1000), ("24h", (NOW - 86_400) * 1000),
    ("1.5h", (NOW - 5400) * 1000), ("7d", (NOW - 604_800) * 1000), ("2W", (NOW - 1_209_600) * 1000),
    ("2023-11-14T22:13:20Z", NOW * 1000), ("2023-11-14T22:13:20", NOW * 1000),
    ("2023-11-14T23:13:20+01:00", NOW * 1000),
])
def test_since_and_until_read_durations_and_times(text: str, ms: float) -> None:
    """A duration counts back from now; a time without a zone is UTC."""
    assert when(text, now=NOW, option="--since") == int(ms)


@pytest.mark.parametrize("text", ["yesterday", "24", "-1h", "h", "2023-13-01"])
def test_what_is_no_time_is_a_usage_error(text: str) -> None:
    """Anything else is one line naming the option and both forms."""
    with pytest.raises(UsageError, match=r"--since .* is neither a duration"):
        when(text, now=NOW, option="--since")


@pytest.mark.parametrize(("text", "parsed"), [
    ("alarms:0:12", ("alarms", 0, 12)), ("plant.a-b_c:11:0", ("plant.a-b_c", 11, 0))])
def test_an_offset_position_names_topic_partition_and_offset(
        text: str, parsed: tuple[str, int, int]) -> None:
    """TOPIC:PARTITION:OFFSET, split from the right."""
    assert position(text) == parsed


@pytest.mark.parametrize("text", ["alarms", "alarms:0", ":0:1", "alarms:x:1", "alarms:0:-1"])
def test_a_malformed_position_is_refused(text: str) -> None:
    """Each part must be there, the numbers whole and not negative."""
    with pytest.raises(argparse.ArgumentTypeError, match="is not TOPIC:PARTITION:OFFSET"):
        position(text)


def resolved(tokens: list[str]) -> tuple[argparse.Namespace, object]:
    parser = build_parser()
    args = parser.parse_args(tokens)
    sources = resolve_options(parser, args, tokens, environ={})
    args.parser = parser.commands[args.command]  # type: ignore[attr-defined]
    return args, sources


def test_the_baseline_keeps_the_flags_and_swaps_the_file(tmp_path: Path) -> None:
    """Candidate: flags over NEW's settings; baseline: the same flags over OLD's settings,
    or the flags alone without --against."""
    new, old = tmp_path / "new.toml", tmp_path / "old.toml"
    new.write_text('filter_key = "type"\nfilter_val = "INFO"\nkafka_brokers = "b:9092"\n'
                   'port = 8977\n')
    old.write_text('filter_key = "type"\nfilter_val = "ALARM"\nmap_key_summary = "comment"\n')
    tokens = ["replay", "--config", str(new), "-e", "t", "--since", "1h",
              "--map_key_alert_key", "mCode"]
    args, sources = resolved(tokens)
    candidate = current(args, sources)  # type: ignore[arg-type]
    assert candidate.name == f"--config {new}"
    assert (candidate.rules.filter_val, candidate.rules.map_key_alert_key) == ("INFO", "mCode")
    against = baseline(args, sources, args.parser, str(old))  # type: ignore[arg-type]
    assert (against.rules.filter_val, against.rules.map_key_alert_key,
            against.rules.map_key_summary) == ("ALARM", "mCode", "comment")
    alone = baseline(args, sources, args.parser, None)  # type: ignore[arg-type]
    assert alone.name == NO_FILE
    assert (alone.rules.filter_key, alone.rules.map_key_alert_key) == (None, "mCode")


def test_routes_of_the_old_file_are_the_baselines(tmp_path: Path) -> None:
    """--against a file with [[route]]s compares with those routes."""
    old = tmp_path / "old.toml"
    old.write_text('[[route]]\nname = "alarms"\nintegration_key = "il1apiroute0001"\n'
                   'match = [{ path = "type", equals = "ALARM" }]\n')
    args, sources = resolved(["replay", "-e", "t", "--since", "1h"])
    against = baseline(args, sources, args.parser, str(old))  # type: ignore[arg-type]
    assert [route.name for route in against.routes] == ["alarms"]


@pytest.mark.parametrize(("extra", "words"), [
    (["--to", "https://api.ilert.com/api"], "is ilert itself"),
    (["--to", "https://eu.api.ilert.com/api/"], "is ilert itself"),
    (["--to", "ftp://sandbox/api"], "must be an http:// or https:// URL"),
    (["--until", "2h"], "is not after --since"),
    ([], "replay needs --kafka_brokers"),
])
def test_refused_before_anything_is_read(extra: list[str], words: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """ilert itself without --send, a bad URL or range, no brokers: one line, exit 2."""
    assert main(["replay", "-e", "t", "--since", "1h", *extra]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("ilagent replay: error: ") and words in err[0]
