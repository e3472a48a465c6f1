"""Secrets are masked by value, however they are given: every kind of secret, through each
source (flags, ILAGENT_* variables, the TOML file, a Kafka client.properties file), in shapes
nothing like ilert's keys, while errors print them — a 404'd heartbeat ping, a SASL
authentication failure, a wrong TLS key password, a traceback — is never found in the
output of any command, in ``config show`` (text and JSON), in ``/metrics`` or ``/health``.

The traceback comes from a fault put in from outside (a ``sitecustomize`` that makes reading
a queued row fail with the secrets in the exception's message); the product code is the one
that runs everywhere else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from helpers import Sandbox, create_topic, http, secret, status_or_none, unique, wait_until

SOURCES = ["flags", "environment", "toml", "properties"]
# first-class Kafka options and the property a client.properties file gives them with
AS_PROPERTY = {"kafka_ssl_key_password": "ssl.key.password"}
FAULT = '''"""Test fault: reading a queued row fails, the secrets in the exception's message."""
import os

import ilagent.spool.worker as worker


def read_row(row, *, convert):
    raise RuntimeError("cannot read the row with " + os.environ["FAULT_MESSAGE"])


worker.read_row = read_row
'''


def configure(source: str, options: dict[str, str], properties: dict[str, str],
              directory: Path) -> tuple[list[str], dict[str, str]]:
    """Arguments (after the command) and environment giving these options and librdkafka
    properties through one source; "properties" puts the Kafka ones in a client.properties
    file (the SASL password as Java's sasl.jaas.config) and the rest in the TOML file."""
    if source == "flags":
        args = [f"--{name}={value}" for name, value in options.items()]
        return args + [f"--kafka_config={k}={v}" for k, v in properties.items()], {}
    if source == "environment":
        env = {f"ILAGENT_{name.upper()}": value for name, value in options.items()}
        if properties:
            env["ILAGENT_KAFKA_CONFIG"] = ";".join(f"{k}={v}" for k, v in properties.items())
        return [], env
    toml = dict(options)
    table = dict(properties)
    if source == "properties":
        lines = [f"{k}={v}" for k, v in properties.items()]
        table = {}
        for name in [n for n in toml if n in AS_PROPERTY]:
            lines.append(f"{AS_PROPERTY[name]}={toml.pop(name)}")
        if "kafka_sasl_password" in toml:
            lines.append("sasl.jaas.config=org.apache.kafka.common.security.scram."
                         'ScramLoginModule required username="ilagent" '
                         f'password="{toml.pop("kafka_sasl_password")}";')
        if lines:
            client = directory / f"client-{unique('p')}.properties"
            client.write_text("\n".join(lines) + "\n")
            toml["kafka_config_file"] = str(client)
    path = directory / f"ilagent-{unique('t')}.toml"
    text = "".join(f"{k} = {json.dumps(v)}\n" for k, v in toml.items())
    if table:
        text += "[kafka_config]\n" + "".join(f'"{k}" = {json.dumps(v)}\n'
                                             for k, v in table.items())
    path.write_text(text)
    return ["--config", str(path)], {}


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60
        ) -> subprocess.CompletedProcess[str]:
    """One ilagent command to its end."""
    return subprocess.run([sys.executable, "-m", "ilagent", *args], capture_output=True,
                          text=True, timeout=timeout, check=False,
                          env={**os.environ, **(env or {})})


def leaks(outputs: dict[str, str], secrets: Iterable[str]) -> list[tuple[str, str]]:
    """(where, secret) for each secret found whole, or its last 8 characters (a key keeps
    only 4), in any of the outputs."""
    return [(where, value) for where, text in outputs.items() for value in secrets
            if value in text or value[-8:] in text]


def free_port() -> int:
    import broker

    return int(broker.free_port())


@pytest.mark.parametrize("source", SOURCES)
def test_a_running_daemon_shows_no_secret_through_errors_metrics_or_a_traceback(
        source: str, kafka_bootstrap: str, mosquitto: Any, sandbox: Sandbox, run_ilagent: Any,
        tmp_path: Path) -> None:
    """At -vvv (configuration dump included), with every kind of secret given through one
    source: the own heartbeat is answered 404 and an event's row fails with a traceback
    naming every secret; no secret is in the output, /metrics or /health?details, and the
    heartbeat key shows its last 4 characters only."""
    options = {"http_token": secret("s3cr3t-token"), "heartbeat": secret("s3cr3t-hb"),
               "event_key": secret("s3cr3t-ek"), "ilert_api_key": secret("s3cr3t-api"),
               "kafka_sasl_password": secret("s3cr3t-sasl"),
               "kafka_ssl_key_password": secret("s3cr3t-keypass"),
               "mqtt_password": mosquitto.password}
    properties = {"sasl.oauthbearer.config": f"principal={secret('s3cr3t-oauth')}",
                  "sasl.oauthbearer.client.secret": secret("s3cr3t-client")}
    secrets = [*options.values(), *properties.values()]
    sandbox.seed(heartbeatKeys=["ih2:900:acme:hb1:7d5e"])  # ours is unknown: 404
    topic = create_topic(kafka_bootstrap, unique("secrets"))
    fault = tmp_path / "fault"
    fault.mkdir()
    (fault / "sitecustomize.py").write_text(FAULT)
    args, env = configure(source, options, properties, tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    daemon = run_ilagent(
        "-vvv", "daemon", "-p", str(port), "--http_host", "127.0.0.1",
        "-f", str(tmp_path / "q.db3"), "--kafka_brokers", kafka_bootstrap,
        "--kafka_group_id", unique("g"), "-e", topic, "-m", "127.0.0.1",
        "-q", str(mosquitto.ports["auth"]), "--mqtt_username", "ilagent", "--mqtt_qos", "1",
        *args, env={**env, "FAULT_MESSAGE": " ".join(secrets),
                    "PYTHONPATH": os.pathsep.join([str(fault), os.environ.get("PYTHONPATH", "")])})
    wait_until(lambda: status_or_none("GET", f"{base}/ready") == 204 or not daemon.alive(),
               timeout=60, what="the daemon to be ready")
    assert daemon.alive(), daemon.output()[-3000:]
    wait_until(lambda: "heartbeat ping" in daemon.output(), timeout=30,
               what="the 404'd heartbeat ping to be logged")
    auth = {"Authorization": f"Bearer {options['http_token']}"}
    status, _ = http("POST", f"{base}/api/events", {"integrationKey": options["event_key"],
                                                    "eventType": "ALERT", "summary": "x"},
                     headers=auth)
    assert status == 202
    wait_until(lambda: "RuntimeError: cannot read the row" in daemon.output(), timeout=30,
               what="the traceback of the failed row")
    _status, metrics = http("GET", f"{base}/metrics", headers=auth)
    _status, details = http("GET", f"{base}/health?details", headers=auth)
    assert daemon.stop() == 0
    output = daemon.output()
    assert "Traceback" in output and "heartbeat ping" in output
    assert f"/pings/{'*' * (len(options['heartbeat']) - 4)}{options['heartbeat'][-4:]}" in output
    found = leaks({"output": output, "/metrics": str(metrics), "/health": json.dumps(details)},
                  secrets)
    assert found == [], found


@pytest.mark.parametrize("source", SOURCES)
def test_config_show_shows_no_secret(source: str, tmp_path: Path) -> None:
    """config show and config show --json list every setting and hide every secret given
    through the source, sasl.oauthbearer.config included."""
    options = {"http_token": secret("s3cr3t-token"), "heartbeat": secret("s3cr3t-hb"),
               "event_key": secret("s3cr3t-ek"), "ilert_api_key": secret("s3cr3t-api"),
               "kafka_sasl_password": secret("s3cr3t-sasl"),
               "kafka_ssl_key_password": secret("s3cr3t-keypass"),
               "mqtt_password": secret("s3cr3t-mqtt")}
    properties = {"sasl.oauthbearer.config": f"principal={secret('s3cr3t-oauth')}",
                  "sasl.oauthbearer.client.secret": secret("s3cr3t-client")}
    args, env = configure(source, options, properties, tmp_path)
    common = ["-p", "8977", "--kafka_brokers", "b:9092", "-e", "t", "-m", "h",
              "--mqtt_username", "u", *args]
    text, as_json = run("config", "show", *common, env=env), run("config", "show", "--json",
                                                                 *common, env=env)
    assert text.returncode == 0 and as_json.returncode == 0, text.stderr + as_json.stderr
    shown = {p["name"]: p["value"] for p in json.loads(as_json.stdout)["kafkaProperties"]}
    assert shown["sasl.oauthbearer.config"] == "********"
    found = leaks({"text": text.stdout + text.stderr, "json": as_json.stdout + as_json.stderr},
                  [*options.values(), *properties.values()])
    assert found == [], found


@pytest.mark.parametrize("source", SOURCES)
def test_a_sasl_failure_and_a_wrong_key_password_show_no_secret(
        source: str, secured_kafka: Any, tmp_path: Path) -> None:
    """A wrong SCRAM password at the SASL_SSL listener, and a wrong password of an encrypted
    client key at the TLS listener: each exits 2 with one line that holds no secret."""
    tls = secured_kafka.tls
    password = secret("s3cr3t-sasl")
    args, env = configure(source, {"kafka_sasl_password": password}, {}, tmp_path)
    sasl = run("daemon", "--kafka_brokers", secured_kafka.sasl_ssl_bootstrap,
               "--kafka_security_protocol", "SASL_SSL", "--kafka_sasl_mechanism",
               "SCRAM-SHA-512", "--kafka_sasl_username", "ilagent", "--kafka_ssl_ca",
               str(tls / "ca.pem"), "-e", unique("t"), "-f", str(tmp_path / "q.db3"),
               "-vvv", *args, env=env)
    assert sasl.returncode == 2, sasl.stderr[-3000:]
    assert "error: Kafka" in sasl.stderr
    key_password = secret("s3cr3t-keypass")
    encrypted = tmp_path / "client-encrypted.key"
    subprocess.run(["openssl", "pkey", "-in", str(tls / "client.key"), "-aes256", "-passout",
                    f"pass:{secret('s3cr3t-right')}", "-out", str(encrypted)], check=True,
                   capture_output=True, timeout=60)
    args, env = configure(source, {"kafka_ssl_key_password": key_password}, {}, tmp_path)
    tls_run = run("daemon", "--kafka_brokers", secured_kafka.ssl_bootstrap,
                  "--kafka_security_protocol", "SSL", "--kafka_ssl_ca", str(tls / "ca.pem"),
                  "--kafka_ssl_cert", str(tls / "client.pem"), "--kafka_ssl_key",
                  str(encrypted), "-e", unique("t"), "-vvv", *args, env=env)
    assert tls_run.returncode == 2, tls_run.stderr[-3000:]
    found = leaks({"sasl": sasl.stdout + sasl.stderr, "tls": tls_run.stdout + tls_run.stderr},
                  [password, key_password])
    assert found == [], found


@pytest.mark.parametrize("source", ["flags", "environment", "toml"])
def test_event_and_heartbeat_refused_by_ilert_show_no_key(source: str, sandbox: Sandbox,
                                                          tmp_path: Path) -> None:
    """`ilagent event` and `ilagent heartbeat` with keys ilert does not know: exit 1 with an
    error line, and neither key is in the output."""
    sandbox.seed(heartbeatKeys=["ih2:900:acme:hb1:7d5e"], integrationKeys=["il1apiKNOWN0001"])
    outputs = {}
    keys = []
    for command in ("event", "heartbeat"):
        key = secret(f"s3cr3t-{command}")
        keys.append(key)
        args, env = configure(source, {"integration_key": key}, {}, tmp_path)
        extra = ["-t", "ALERT", "-s", "door open"] if command == "event" else []
        done = run(command, *extra, "--retries", "0", "-vvv", *args,
                   env={**env, "ILERT_API_URL": sandbox.api_url,
                        "ILERT_BEAT_URL": sandbox.api_url})
        assert done.returncode == 1 and "not delivered" in done.stderr, done.stderr
        outputs[command] = done.stdout + done.stderr
    found = leaks(outputs, keys)
    assert found == [], found
