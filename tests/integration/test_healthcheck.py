"""The container's HEALTHCHECK (``python -m ilagent.healthcheck PID``) against real daemons: it
finds the port wherever the daemon took it from, and a daemon without ``-p`` is healthy while it
runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import status_or_none, unique, wait_until
from ilagent.healthcheck import ilagent_arguments


def healthcheck(pid: int) -> subprocess.CompletedProcess[str]:
    """The check, as the image's HEALTHCHECK runs it; stderr lists what it imported."""
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ilagent.healthcheck", str(pid)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def imported(importtime: str) -> set[str]:
    """The modules named by ``-X importtime`` lines."""
    return {line.rsplit("|", 1)[1].strip() for line in importtime.splitlines()
            if line.startswith("import time:")}


@pytest.mark.parametrize("where", ["flag", "env", "file"])
def test_a_daemon_with_a_port_is_healthy_while_health_answers(
    where: str, run_ilagent: Any, tmp_path: Path
) -> None:
    """-p on the command line, ILAGENT_PORT or `port` in a relative --config file: the check
    asks that port's /health; a stopped (hung) daemon is unhealthy."""
    import broker

    port = broker.free_port()
    args = ["daemon", "--http_host", "127.0.0.1", "-f", str(tmp_path / "q.db3")]
    env = {}
    if where == "flag":
        args += ["-p", str(port)]
    elif where == "env":
        env["ILAGENT_PORT"] = str(port)
    else:
        (tmp_path / "ilagent.toml").write_text(f"port = {port}\n")
        args += ["--config", "ilagent.toml"]  # relative to the daemon's directory
    daemon = run_ilagent(*args, env=env)
    wait_until(
        lambda: (
            status_or_none("GET", f"http://127.0.0.1:{port}/health") == 204 or not daemon.alive()
        ),
        timeout=30,
        what="the daemon to serve HTTP",
    )
    done = healthcheck(daemon.proc.pid)
    assert done.returncode == 0, done.stdout + daemon.output()
    assert (
        done.stdout == f"healthy: pid {daemon.proc.pid}: http://127.0.0.1:{port}/health "
        "answered 204\n"
    )
    # it reads the daemon's options with the daemon's parser, and none of the libraries of
    # what it does not do: Docker runs it every 30 s (the README, Install)
    modules = imported(done.stderr)
    assert {"ilagent.cli", "urllib.request"} <= modules, done.stderr[-2000:]
    heavy = {m for m in modules
             if m.split(".")[0] in {"aiohttp", "confluent_kafka", "paho", "prometheus_client"}}
    assert not heavy, sorted(heavy)
    if where == "flag":
        os.kill(daemon.proc.pid, signal.SIGSTOP)
        try:
            hung = healthcheck(daemon.proc.pid)
        finally:
            os.kill(daemon.proc.pid, signal.SIGCONT)
        assert hung.returncode == 1 and hung.stdout.startswith("unhealthy: "), hung.stdout


def test_a_daemon_without_http_is_healthy_while_it_runs(run_ilagent: Any) -> None:
    """No -p: nothing to ask, the process running is the health; once it ended, unhealthy."""
    daemon = run_ilagent("daemon", "-b", unique("il1hbthc"))
    done = healthcheck(daemon.proc.pid)
    assert (done.returncode, done.stdout) == (
        0,
        f"healthy: pid {daemon.proc.pid} runs (no HTTP server to ask)\n",
    )
    daemon.proc.terminate()
    daemon.proc.wait(15)
    gone = healthcheck(daemon.proc.pid)
    assert gone.returncode == 1 and "no ilagent process" in gone.stdout


def test_a_process_that_is_not_ilagent_is_unhealthy() -> None:
    """The test runner itself is no ilagent process."""
    done = healthcheck(os.getpid())
    assert (done.returncode, done.stdout) == (
        1,
        f"unhealthy: no ilagent process with pid {os.getpid()}\n",
    )


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        (["ilagent", "daemon", "-p", "1"], ["daemon", "-p", "1"]),
        (["/opt/ilagent/bin/python", "/opt/ilagent/bin/ilagent", "daemon"], ["daemon"]),
        (["python3.11", "-m", "ilagent", "-v", "daemon"], ["-v", "daemon"]),
        (["python3", "-m", "ilagent.healthcheck"], None),
        (["python3", "-m", "pytest", "src/ilagent"], None),
        (["grep", "ilagent"], None),
        ([], None),
    ],
)
def test_which_command_lines_are_ilagent(cmdline: list[str], expected: list[str] | None) -> None:
    """The program itself, its console script run by Python, or `python -m ilagent`."""
    assert ilagent_arguments(cmdline) == expected
