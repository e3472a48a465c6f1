"""Operable at 3 a.m. on Kafka: readiness that means ready, refused configuration, quiet logs."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import (
    Sandbox,
    create_topic,
    http,
    secret,
    status_or_none,
    unique,
    wait_until,
)


def ilagent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ilagent", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_two_daemons_in_one_group_on_one_partition_are_both_ready(
        kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """A replica without partitions is a group member too: both answer /ready 204."""
    import broker

    topic = create_topic(kafka_bootstrap, unique("ready"))
    group = unique("g")
    ports = [broker.free_port(), broker.free_port()]
    for port in ports:
        run_ilagent("daemon", "-p", str(port), "--http_host", "127.0.0.1", "-f",
                    str(tmp_path / f"{port}.db3"), "--kafka_brokers", kafka_bootstrap,
                    "--kafka_group_id", group, "-e", topic)
    for port in ports:
        wait_until(lambda p=port: status_or_none("GET", f"http://127.0.0.1:{p}/ready") == 204,
                   timeout=60, what=f"/ready 204 on {port}")
        assert http("GET", f"http://127.0.0.1:{port}/ready/kafka")[0] == 204


@pytest.mark.parametrize(("prop", "named"), [
    ("enable.auto.offset.store=true", "enable.auto.offset.store"),
    ("enable.auto.commit=true", "enable.auto.commit"),
    ("group.id=other", "group.id"),
    ("no.such.property=1", "no.such.property"),
    ("session.timeout.ms=forty", "session.timeout.ms"),
])
def test_a_refused_kafka_property_is_one_line_and_exit_2(prop: str, named: str) -> None:
    """Properties that would break at-least-once, that have their own flag, or that librdkafka
    refuses: one line naming the property, exit 2, no traceback."""
    done = ilagent("daemon", "--kafka_brokers", "127.0.0.1:9", "-e", "t", "--kafka_config", prop)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and named in lines[0], done.stderr
    assert lines[0].startswith("ilagent daemon: error:") and "Traceback" not in done.stderr


def test_unreachable_brokers_are_waited_for_quietly(run_ilagent: Any, sandbox: Sandbox,
                                                    tmp_path: Path) -> None:
    """Brokers unreachable for 20 s: the daemon stays up, /ready is 503 naming Kafka, the intake
    stays ready, and at most 5 log lines speak of it."""
    import broker

    port, dead = broker.free_port(), broker.free_port()
    daemon = run_ilagent("daemon", "-p", str(port), "--http_host", "127.0.0.1", "-f",
                         str(tmp_path / "q.db3"), "--kafka_brokers",
                         f"127.0.0.1:{dead}", "-e", "t")
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: status_or_none("GET", f"{base}/health") == 204, timeout=30,
               what="the daemon to serve HTTP")
    started = time.monotonic()
    while time.monotonic() - started < 20:  # watch it for 20 s
        status, body = http("GET", f"{base}/ready")
        assert status == 503 and [f["component"] for f in body["failing"]] == ["kafka"], body
        assert http("GET", f"{base}/ready/intake")[0] == 204
        time.sleep(1)
    assert daemon.alive()
    about = [line for line in daemon.output().splitlines()
             if ("librdkafka" in line or "Kafka" in line) and ("WARNING" in line or "ERROR" in line)]
    print(f"\n[report] brokers unreachable for 20 s: {len(about)} log lines about it")
    assert 1 <= len(about) <= 5, "\n".join(about)


def test_no_secret_of_the_configuration_reaches_the_log(run_ilagent: Any, sandbox: Sandbox,
                                                          tmp_path: Path) -> None:
    """At -vvv the daemon logs its configuration; the token and a SASL password stay hidden."""
    import broker

    port, dead = broker.free_port(), broker.free_port()
    token, password = secret("token"), secret("sasl-pw")
    daemon = run_ilagent("-vvv", "daemon", "-p", str(port), "--http_host", "127.0.0.1",
                         "--http_token", token, "-f", str(tmp_path / "q.db3"),
                         "--kafka_brokers", f"127.0.0.1:{dead}", "-e", "t",
                         "--kafka_config", "security.protocol=SASL_PLAINTEXT",
                         "--kafka_config", "sasl.mechanism=PLAIN",
                         "--kafka_config", "sasl.username=alice",
                         "--kafka_config", f"sasl.password={password}")
    wait_until(lambda: "configuration: DaemonConfig(" in daemon.output(), timeout=30,
               what="the configuration in the log")
    output = daemon.output()
    assert token not in output and password not in output
    assert "sasl.password" in output  # the key is shown, its value is not
