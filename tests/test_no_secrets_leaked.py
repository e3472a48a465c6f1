"""Runs last: no secret the suite gave an ilagent process appears in any such process's output.

Every process started through the ``run_ilagent`` fixture writes its stdout and stderr to a
file and is remembered with its arguments and environment (``helpers.RUNS``). The secrets
looked for are those the tests took from ``helpers.secret`` (and the fixtures' passwords), and
also every secret a test handed a process directly — found in its arguments and environment
with ilagent's own list of secret options, as far as its value is long enough to be masked
by value. Run alone, the check first runs a daemon of its own (a token and a heartbeat key
that ilert answers 404), so it never has nothing to read.
"""

from __future__ import annotations

from typing import Any

from helpers import DAEMON_LOGS, RUNS, SECRETS, Sandbox, secret, wait_until
from ilagent.cli import build_parser
from ilagent.logs import MIN_SECRET_LENGTH
from ilagent.secret_options import SECRET_OPTIONS, is_secret_property

NOT_MASKED = {"map"}  # prints the mapped event, key included, on purpose (a local dry run)


def option_strings() -> dict[str, str]:
    """Every option string of a secret option (``-b``, ``--http-token``, …) → its name."""
    parser = build_parser()
    commands = parser.commands  # type: ignore[attr-defined]
    return {string: action.dest for p in commands.values() for action in p._actions
            if action.dest in SECRET_OPTIONS for string in action.option_strings}


def given(args: list[str], env: dict[str, str]) -> set[str]:
    """The secrets on a command line and in an environment, as ilagent reads them."""
    strings = option_strings()
    found: set[str] = set()
    for index, token in enumerate(args):
        name, sep, value = token.partition("=")
        if name in strings:
            found.add(value if sep else (args[index + 1] if index + 1 < len(args) else ""))
        if name in ("--kafka_config", "--kafka-config"):
            pair = value if sep else (args[index + 1] if index + 1 < len(args) else "")
            prop, _, prop_value = pair.partition("=")
            if is_secret_property(prop.strip()):
                found.add(prop_value)
    for option in SECRET_OPTIONS:
        found.add(env.get(f"ILAGENT_{option.upper()}", ""))
    for variable in ("ILERT_INTEGRATION_KEY", "ILERT_API_KEY"):
        found.add(env.get(variable, ""))
    return {value for value in found if len(value) >= MIN_SECRET_LENGTH}


def test_no_secret_reached_a_log_line(run_ilagent: Any, sandbox: Sandbox) -> None:
    """Whatever the processes logged — errors, tracebacks, librdkafka, their config — no
    secret, whether it came from the helpers or straight from a test's command line."""
    import broker

    sandbox.seed(heartbeatKeys=["ih2:900:acme:hb1:7d5e"])
    own = run_ilagent("-vvv", "daemon", "-p", str(broker.free_port()), "--http_host",
                      "127.0.0.1", "--intake", "off", "-b", "s3cr3t-own-heartbeat-0042",
                      env={"ILAGENT_HTTP_TOKEN": secret("s3cr3t-own-token")})
    wait_until(lambda: "heartbeat ping" in own.output() or not own.alive(), timeout=60,
               what="the own daemon's 404'd ping")
    assert own.stop() == 0, own.output()
    logs = [path for path in DAEMON_LOGS if path.exists()]
    assert own.log in logs and "s3cr3t-own-heartbeat-0042" in given(own.args, own.env)
    runs = [(run.log, given(run.args, run.env)) for run in RUNS
            if not NOT_MASKED & set(run.args)]
    leaks = [(path.name, value) for path in logs for value in SECRETS
             if value in path.read_text(errors="replace")]
    leaks += [(path.name, value) for path, values in runs if path.exists()
              for value in values if value in path.read_text(errors="replace")]
    assert leaks == [], f"secrets in ilagent output: {leaks[:5]}"
