"""``--intake off``: the HTTP server answers probes and metrics only, and no spool file is opened
(the Kubernetes Deployment runs Kafka-only this way, with probes but without storage that would
die with the pod)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from http_daemon import start_daemon

from helpers import Sandbox, http, unique, wait_until


def ilagent(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ilagent", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_with_the_intake_off_only_probes_and_metrics_are_served(
    sandbox: Sandbox, run_ilagent: Any, tmp_path: Path
) -> None:
    """/health, /ready and /metrics answer; the event and heartbeat routes are 404; the spool
    file and its lock are never created; the daemon's own heartbeat still goes out."""
    db, beat = tmp_path / "spool.db3", unique("il1hbtoff")
    daemon, base = start_daemon(run_ilagent, db, "--intake", "off", "-b", beat)
    assert http("GET", f"{base}/ready")[0] == 204
    status, text = http("GET", f"{base}/metrics")
    assert status == 200 and "ilagent_ready" in text
    status, body = http(
        "POST",
        f"{base}/api/events",
        {"integrationKey": "il1apiX1", "eventType": "ALERT", "summary": "s"},
    )
    assert status == 404 and body["status"] == 404, body
    assert http("GET", f"{base}/api/heartbeats/{beat}")[0] == 404
    wait_until(
        lambda: http("GET", f"{sandbox.url}/sandbox/heartbeats?key={beat}")[1],
        timeout=30,
        what="the daemon's own heartbeat",
    )
    assert not db.exists() and not Path(f"{db}.lock").exists()
    assert daemon.alive(), daemon.output()


def test_intake_without_port_or_alone_is_a_usage_error(tmp_path: Path) -> None:
    """--intake without -p cannot take effect, and -p with the intake off and nothing else to
    run does nothing: both exit 2 with one line."""
    alone = ilagent("daemon", "--intake", "off", "-b", "il1hbtX")
    assert alone.returncode == 2
    assert alone.stderr.startswith("ilagent daemon: error: --intake needs --port")
    idle = ilagent("daemon", "-p", "1", "--intake", "off", "-f", str(tmp_path / "q.db3"))
    assert idle.returncode == 2
    assert idle.stderr.startswith("ilagent daemon: error: nothing to run: with --intake off")
    assert not (tmp_path / "q.db3").exists()


def test_the_intake_switch_comes_from_the_environment_and_config_show_lists_it() -> None:
    """ILAGENT_INTAKE=OFF (any case) is the switch; config show names it and its source."""
    shown = ilagent("config", "show", "-p", "8977", env={"ILAGENT_INTAKE": "OFF"})
    assert shown.returncode == 0, shown.stderr
    line = next(row for row in shown.stdout.splitlines() if row.startswith("intake "))
    assert line.split() == ["intake", "off", "(env", "ILAGENT_INTAKE)"]
    wrong = ilagent("config", "show", env={"ILAGENT_INTAKE": "maybe"})
    assert wrong.returncode == 2 and "'maybe' is not one of on, off" in wrong.stderr


def test_with_the_intake_off_mqtt_buffer_mode_keeps_its_spool_and_serves_no_intake(
    mosquitto: Any, run_ilagent: Any, tmp_path: Path
) -> None:
    """MQTT's buffer mode opens the spool file; the HTTP server still takes no events and has
    no intake part in /ready, while /ready/mqtt answers."""
    db = tmp_path / "spool.db3"
    _daemon, base = start_daemon(
        run_ilagent,
        db,
        "--intake",
        "off",
        "-m",
        "127.0.0.1",
        "-q",
        str(mosquitto.ports["plain"]),
        "-e",
        unique("events"),
        "-n",
        unique("ilagent"),
        "--mqtt_qos",
        "1",
        "--mqtt_buffer",
    )
    wait_until(
        lambda: http("GET", f"{base}/ready/mqtt")[0] == 204,
        timeout=30,
        what="the MQTT subscription",
    )
    assert db.exists()
    assert http("GET", f"{base}/ready/intake")[0] == 404
    assert http("GET", f"{base}/ready/spool")[0] == 204  # the buffer's spool takes writes
    status, _ = http(
        "POST",
        f"{base}/api/events",
        {"integrationKey": "il1apiX1", "eventType": "ALERT", "summary": "s"},
    )
    assert status == 404
