"""Whatever a tired person types — any command, any mix of its options and of junk, values that
do not fit, files that are not what they should be, stray ILAGENT_* variables — ilagent answers
with exit code 0, 1 or 2 and never a traceback or a generic "internal error".

In process, and stopping at validation: the daemon's configuration is built and checked but the
daemon is not started (``ilagent.daemon.run``), the sandbox's seed is read but nothing serves
(``ilagent.sandbox.serve``), ``event`` and ``heartbeat`` check what they would send
(:func:`ilagent.commands.send.prepare`) without sending; ``map --last`` reads no topic
(``ilagent.kafka.sample.read_last``); ``map``, ``queue`` and ``config show`` run whole, on
small files.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import os
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ilagent.cli import build_parser, main
from ilagent.commands import send

FILES = Path(tempfile.mkdtemp(prefix="ilagent-cli-"))  # made once per run, see files()
atexit.register(shutil.rmtree, FILES, ignore_errors=True)


def files() -> dict[str, str]:
    """Small input files of every kind a value may name (made once, reused by all examples)."""
    made = {
        "text": ("notes.txt", b"just text\n"),
        "empty": ("empty.db3", b""),
        "cp1252": ("samples.jsonl", b'{"summary": "T\xfcr offen", "integrationKey": "k"}\n'
                                    b'{"eventType": "ALERT", "summary": "s", "apiKey": "il1ap"}\n'
                                    b"\n[1, 2]\n"),
        "toml": ("ilagent.toml", b'kafka_brokers = "b:1"\nevent_topic = ["t"]\nport = 8977\n'),
        "bad_toml": ("bad.toml", b"port = = 3\n"),
        "typo_toml": ("typo.toml", b'kafka_broker = "b:1"\n'),
        "seed": ("seed.json", b'{"users": [{"id": 7, "email": "a@b.c"}]}'),
        "bad_seed": ("bad-seed.json", b'{"users": 3}'),
        "properties": ("client.properties", b"security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\n"
                                            b"sasl.jaas.config=nothing\n"),
        "bad_properties": ("bad.properties", b"a=\\uZZZZ\n"),
        "nul_toml": ("nul.toml", b'kafka_config_file = "a\\u0000b"\nkafka_brokers = "b:1"\n'),
    }
    paths = {}
    for name, (filename, content) in made.items():
        path = FILES / filename
        if not path.exists():
            path.write_bytes(content)
        paths[name] = str(path)
    spool = FILES / "spool.db3"
    if not spool.exists():
        from ilagent.spool.db import QueueDB

        QueueDB(str(spool)).close()
    foreign = FILES / "other.sqlite"
    if not foreign.exists():
        with contextlib.closing(sqlite3.connect(foreign)) as conn:
            conn.execute("CREATE TABLE inventory (item TEXT)")
            conn.commit()
    paths.update(spool=str(spool), foreign=str(foreign), missing=str(FILES / "no" / "such"),
                 directory=str(FILES))
    return paths


PATHS = files()
VALUES = [
    "", "0", "1", "-1", "2", "3", "99999999999999999999", "1.5", "nan", "inf", "-0",
    "x", "on", "off", "yes", "true", "ALERT", "alert", "COMMENT", "high", "PLAIN",
    "sasl_ssl", "SSL", "earliest", "5", "3.1.1",
    "localhost:9092", "kafka:9092", "broker:8883", "tcp://10.0.0.1:8977", "mqtt://h",
    "http://127.0.0.1:9/api", "127.0.0.1:9/api", "https://api.ilert.com/api",
    "a/b", "a/b#", "a/+/c", "^plant\\..*", "topic,other", "$share/g/t",
    "il1api1234567", "il1hbt1234567", "ih2:abc:def", "Bearer x", "a=b", "=", "k=",
    "Tür", "\udce4", "\x1b[31m", "-", "--", "x" * 300,  # (no NUL: argv cannot hold one)
    *PATHS.values(),
]
JUNK = ["--bogus", "-g", "-t", "-k", "--kafka_broker", "--dead", "--file", "-f", "--", "-vvv",
        "--help", "-V", "--version", "--json", "--yes", "--all", "--check", "--policy"]
ENVIRONMENT = {
    "ILAGENT_PORT": ["tcp://10.0.0.1:8977", "8977", "x"],
    "ILAGENT_SERVICE_HOST": ["10.0.0.1"],
    "ILAGENT_KAFKA_BROKER": ["b:1"],
    "ILAGENT_KAFKA_BROKERS": ["b:1", ""],
    "ILAGENT_EVENT_TOPIC": ["t", "^a,b", "a/b"],
    "ILAGENT_MAX_IN_FLIGHT": ["0", "7", "many"],
    "ILAGENT_MQTT_TLS": ["maybe", "true"],
    "ILAGENT_KAFKA_CONFIG": ["a=1;b", "enable.auto.commit=true"],
    "ILAGENT_CONFIG": [PATHS["toml"], PATHS["bad_toml"], PATHS["typo_toml"], PATHS["missing"]],
    "ILERT_API_URL": ["ftp://x", "http://127.0.0.1:9/api"],
    "ILAGENT_VERBOSE": ["3", "lots"],
}
COMMANDS = [["daemon"], ["event"], ["heartbeat"], ["map"], ["queue", "list"],
            ["queue", "retry"], ["queue", "purge"], ["sandbox"], ["config", "show"], ["queue"],
            ["config"], []]


def _options(words: list[str]) -> list[tuple[str, bool]]:
    """The option strings of the parser that reads ``ilagent WORDS…``, each with whether it
    takes a value."""
    parser: Any = build_parser()
    actions = list(parser._actions)
    if words:
        command = parser.commands[words[0]]
        for action in command._actions:
            actions.append(action)
            if isinstance(getattr(action, "choices", None), dict) and words[1:]:
                actions += action.choices[words[1]]._actions
    return sorted({(s, a.nargs != 0) for a in actions for s in a.option_strings
                   if s not in ("-h", "--help", "-V", "--version")})


OPTIONS = {tuple(words): _options(words[:2]) for words in COMMANDS}
OPTIONS_BY_NAME = {"daemon", "event", "heartbeat", "map", "queue", "sandbox", "config"}


@st.composite
def command_lines(draw: st.DrawFn) -> tuple[list[str], dict[str, str], bytes]:
    """An argument list for one command, an environment, and what stdin holds."""
    words = draw(st.sampled_from(COMMANDS))
    argv = list(words)
    for _ in range(draw(st.integers(0, 7))):
        kind = draw(st.integers(0, 9))
        if kind < 6:
            option, takes_value = draw(st.sampled_from(OPTIONS[tuple(words)]))
            argv.append(option)
            if takes_value != (draw(st.integers(0, 9)) == 0):  # mostly as the option wants
                argv.append(draw(st.sampled_from(VALUES)))
        elif kind < 8:
            argv.append(draw(st.sampled_from(VALUES)))
        else:
            argv.append(draw(st.sampled_from(JUNK)))
    if draw(st.booleans()):  # -v, -f and --config before the command too
        argv[:0] = draw(st.sampled_from([["-v"], ["-f", PATHS["text"]],
                                         ["--config", PATHS["toml"]], ["-f", PATHS["spool"]]]))
    names = draw(st.lists(st.sampled_from(sorted(ENVIRONMENT)), max_size=3, unique=True))
    environ = {name: draw(st.sampled_from(ENVIRONMENT[name])) for name in names}
    stdin = draw(st.binary(max_size=200) | st.sampled_from([
        b'{"type": "ALARM", "mCode": "M1", "state": "SET"}\n', b"\xff\xfe\n", b""]))
    return argv, environ, stdin


@contextlib.contextmanager
def stopping_at_validation(stdin: bytes) -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """Nothing long-running starts; stdin holds ``stdin``; stdout and stderr are captured; the
    logging set-up of a run is undone after it."""
    async def no_sandbox(*_args: Any, **_kwargs: Any) -> None:
        return None

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out, err = io.StringIO(), io.StringIO()
    with mock.patch("ilagent.daemon.run", return_value=0), \
            mock.patch("ilagent.sandbox.serve", no_sandbox), \
            mock.patch("ilagent.kafka.sample.read_last", return_value=[]), \
            mock.patch.object(send, "run", lambda args: (send.prepare(args), 0)[1]), \
            mock.patch.object(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin))), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            yield out, err
        finally:
            root.handlers[:], root.level = handlers, level


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(command_lines())
def test_any_command_line_ends_in_0_1_or_2_without_a_traceback(
        line: tuple[list[str], dict[str, str], bytes]) -> None:
    """Exit code 0, 1 or 2; no "Traceback" and no "internal error" on stdout or stderr."""
    argv, environ, stdin = line
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("ILAGENT_", "ILERT_"))}
    with mock.patch.dict(os.environ, {**clean, **environ}, clear=True), \
            stopping_at_validation(stdin) as (out, err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: usage errors, --help, --version
            code = exc.code if isinstance(exc.code, int) else 2
    text = out.getvalue() + err.getvalue()
    command = next((word for word in argv if word in OPTIONS_BY_NAME), "(none)")
    event(f"{command}: exit {code}")  # seen with --hypothesis-show-statistics
    assert code in (0, 1, 2), (argv, environ, code, text[-2000:])
    assert "Traceback" not in text and "internal error" not in text.lower(), (argv, text[-2000:])
