"""Production Kafka: TLS with client certificates and SASL_SSL/SCRAM on the suite's own broker,
configured by flags, by the environment alone, or by a TOML file plus a client.properties file;
misconfiguration is one line and exit 2; an outage after a good start is waited out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import (
    FAST,
    SECRETS,
    Sandbox,
    committed,
    create_topic,
    http,
    produce,
    secret,
    status_or_none,
    unique,
    wait_until,
)

GUIDE = {"event_key": None, "map_key_alert_key": "mCode", "map_key_summary": "comment",
         "map_key_etype": "state", "map_val_etype_alert": "SET", "map_val_etype_accept": "ACK",
         "map_val_etype_resolve": "CLR", "filter_key": "type", "filter_val": "ALARM"}
STORY = [
    {"type": "ALARM", "mCode": "M1", "comment": "door open", "state": "SET"},
    {"type": "INFO", "mCode": "M1", "comment": "noise", "state": "SET"},
    {"type": "ALARM", "mCode": "M1", "comment": "seen", "state": "ACK"},
    {"type": "ALARM", "mCode": "M1", "comment": "door closed", "state": "CLR"},
]


def listener_settings(kafka: Any, listener: str) -> dict[str, str]:
    """Option → value for one secured listener (long option names, underscores)."""
    tls = kafka.tls
    if listener == "ssl":
        return {"kafka_brokers": kafka.ssl_bootstrap, "kafka_security_protocol": "SSL",
                "kafka_ssl_ca": str(tls / "ca.pem"), "kafka_ssl_cert": str(tls / "client.pem"),
                "kafka_ssl_key": str(tls / "client.key")}
    return {"kafka_brokers": kafka.sasl_ssl_bootstrap, "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512", "kafka_sasl_username": "ilagent",
            "kafka_sasl_password": kafka.scram_password, "kafka_ssl_ca": str(tls / "ca.pem")}


def as_flags(settings: dict[str, Any]) -> list[str]:
    flags: list[str] = []
    for name, value in settings.items():
        flags += [f"--{name}", str(value)]
    return flags


@pytest.mark.parametrize("listener", ["ssl", "sasl_ssl"])
@pytest.mark.parametrize("way", ["flags", "environment", "files"])
def test_the_guide_mapping_consumes_through_a_secured_listener(
        secured_kafka: Any, sandbox: Sandbox, run_ilagent: Any, tmp_path: Path, listener: str,
        way: str) -> None:
    """SET/ACK/CLR become ALERT/ACCEPT/RESOLVE through TLS or SASL_SSL, however configured."""
    topic = create_topic(secured_kafka.bootstrap, unique(f"sec-{listener}"))
    key, group = unique("il1api"), unique("g")
    settings: dict[str, Any] = {**listener_settings(secured_kafka, listener),
                                "kafka_group_id": group, "event_topic": topic,
                                **{k: v for k, v in GUIDE.items() if v}, "event_key": key,
                                "kafka_offset_reset": "earliest"}
    if way == "flags":
        daemon = run_ilagent("-vv", "daemon", *as_flags(settings))
    elif way == "environment":
        daemon = run_ilagent("-vv", "daemon", env={f"ILAGENT_{k.upper()}": str(v)
                                                   for k, v in settings.items()})
    else:  # TOML for ilagent, client.properties for the connection
        properties = tmp_path / "client.properties"
        lines = ["# as a Java client would have it", "ssl.endpoint.identification.algorithm = https",
                  f"security.protocol: {settings.pop('kafka_security_protocol')}",
                  f"ssl.ca.location={settings.pop('kafka_ssl_ca')}"]
        if listener == "ssl":
            lines += [f"ssl.certificate.location={settings.pop('kafka_ssl_cert')}",
                      f"ssl.key.location={settings.pop('kafka_ssl_key')}"]
        else:
            user, password = settings.pop("kafka_sasl_username"), settings.pop(
                "kafka_sasl_password")
            settings.pop("kafka_sasl_mechanism")
            lines += ["sasl.mechanism=SCRAM-SHA-512",
                      "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule \\",
                      f'    required username="{user}" password="{password}";']
        properties.write_text("\n".join(lines) + "\n")
        toml = tmp_path / "ilagent.toml"
        toml.write_text("\n".join(f"{k} = {json.dumps(v)}" for k, v in settings.items())
                        + f"\nkafka_config_file = {json.dumps(str(properties))}\n")
        daemon = run_ilagent("-vv", "daemon", "--config", str(toml))
    wait_until(lambda: f"assigned {topic}[" in daemon.output() or not daemon.alive(),
               timeout=60, what="assignment through the secured listener")
    assert daemon.alive(), daemon.output()[-3000:]
    produce(secured_kafka.bootstrap, topic, STORY)
    wait_until(lambda: committed(secured_kafka.bootstrap, group, topic) == [4], timeout=30,
               what="every offset committed")
    assert [(b["eventType"], b["summary"]) for b in sandbox.bodies(key)] == [
        ("ALERT", "door open"), ("ACCEPT", "seen"), ("RESOLVE", "door closed")]


def ilagent(*args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "ilagent", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)
    return done, time.monotonic() - started


@pytest.mark.parametrize("mistake", ["wrong password", "unknown CA", "plaintext to TLS"])
def test_a_misconfigured_connection_is_one_line_and_exit_2(secured_kafka: Any, mistake: str,
                                                          tmp_path: Path) -> None:
    """Wrong password, an untrusted CA, plaintext to the TLS port: one line, exit 2, < 30 s."""
    settings = listener_settings(secured_kafka, "sasl_ssl" if mistake != "unknown CA" else "ssl")
    if mistake == "wrong password":
        settings["kafka_sasl_password"] = secret("wrong-password")
    elif mistake == "unknown CA":
        settings["kafka_ssl_ca"] = str(secured_kafka.tls / "other-ca.pem")
    else:
        settings = {"kafka_brokers": secured_kafka.ssl_bootstrap}
    done, took = ilagent("daemon", *as_flags(settings), "-e", unique("t"),
                         "-p", str(_port()), "--http_host", "127.0.0.1",
                         "-f", str(tmp_path / "q.db3"))
    lines = done.stderr.strip().splitlines()
    print(f"\n[report] {mistake}: exit {done.returncode} after {took:.1f} s: {lines[-1:]}")
    assert done.returncode == 2 and took < 30, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("ilagent daemon: error: Kafka"), lines
    assert "Traceback" not in done.stderr
    if mistake == "wrong password":
        assert settings["kafka_sasl_password"] not in done.stderr


def _port() -> int:
    import broker

    return int(broker.free_port())


def test_a_broker_address_that_answers_http_is_one_line_and_exit_2(sandbox: Sandbox) -> None:
    """--kafka_brokers naming an HTTP server's port (the sandbox's): one line saying so and
    naming the option, exit 2, at once; not librdkafka's advice to raise a size limit."""
    address = sandbox.url.removeprefix("http://")
    done, took = ilagent("daemon", "--kafka_brokers", address, "-e", unique("t"))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and took < 30, done.stderr[-2000:]
    assert len(lines) == 1, lines
    assert lines[0].startswith("ilagent daemon: error: not a Kafka listener: the broker address "
                               "answered like an HTTP server (check the host and port in "
                               "--kafka_brokers)"), lines
    assert "receive.message.max.bytes" not in lines[0]


def test_a_broker_address_that_hangs_up_is_one_line_naming_both_causes(mosquitto: Any) -> None:
    """--kafka_brokers naming an MQTT broker's port, which hangs up on Kafka's first request as
    a TLS listener does: one line naming both causes and their options, exit 2."""
    done, took = ilagent("daemon", "--kafka_brokers", f"127.0.0.1:{mosquitto.ports['plain']}",
                         "-e", unique("t"))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and took < 30, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("ilagent daemon: error: Kafka"), lines
    assert "security.protocol" in lines[0] and "--kafka_brokers" in lines[0], lines


def test_no_broker_within_the_connect_timeout_is_exit_2(tmp_path: Path) -> None:
    """--kafka_connect_timeout 3 with nothing listening: one line naming the option, exit 2."""
    done, took = ilagent("daemon", "--kafka_brokers", f"127.0.0.1:{_port()}", "-e", "t",
                         "--kafka_connect_timeout", "3")
    assert done.returncode == 2 and took < 30, done.stderr
    assert done.stderr.strip().splitlines()[-1].count("--kafka_connect_timeout") == 1


def test_a_broker_outage_after_a_good_start_is_waited_out(
        sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """SASL_SSL: the broker stops for 15 s after a good start; the daemon stays up, /ready is
    503 with the reason, and it recovers by itself with nothing lost."""
    import broker

    own = broker.start(tmp_path / "kafka")
    try:
        SECRETS.add(own.scram_password)
        port = broker.free_port()
        topic = create_topic(own.bootstrap, unique("secdown"))
        key, group = unique("il1api"), unique("g")
        daemon = run_ilagent("-vv", "daemon", "-p", str(port), "--http_host", "127.0.0.1",
                             "-f", str(tmp_path / "q.db3"), *as_flags(
                                 listener_settings(own, "sasl_ssl")), "--kafka_group_id", group,
                             "-e", topic, "--kafka_offset_reset", "earliest", *FAST)
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: status_or_none("GET", f"{base}/ready/kafka") == 204, timeout=60,
                   what="ready through SASL_SSL")
        produce(own.bootstrap, topic, [{"integrationKey": key, "eventType": "ALERT",
                                        "alertKey": "a", "summary": f"e{n}"} for n in range(20)])
        wait_until(lambda: len(sandbox.events(key)) == 20, what="the first 20 events")
        own.stop()
        stopped = time.monotonic()
        wait_until(lambda: http("GET", f"{base}/ready/kafka")[0] == 503, timeout=30,
                   what="/ready/kafka 503 while the broker is down")
        _status, body = http("GET", f"{base}/ready/kafka")
        assert body["failing"][0]["component"] == "kafka" and body["failing"][0]["error"]
        wait_until(lambda: time.monotonic() - stopped >= 15, timeout=20, interval=0.5,
                   what="15 s of broker downtime")
        assert daemon.alive()
        own.start_again()
        produce(own.bootstrap, topic, [{"integrationKey": key, "eventType": "ALERT",
                                        "alertKey": "a", "summary": f"e{n}"}
                                       for n in range(20, 40)])
        wait_until(lambda: status_or_none("GET", f"{base}/ready/kafka") == 204, timeout=90,
                   what="ready again")
        wait_until(lambda: len({b["summary"] for b in sandbox.bodies(key)}) == 40, timeout=90,
                   what="the events produced after the outage")
        assert daemon.alive()
    finally:
        own.destroy()


def test_a_regex_subscription_picks_up_a_new_topic(kafka_bootstrap: str, sandbox: Sandbox,
                                                   run_ilagent: Any) -> None:
    """-e '^prefix\\..*' consumes a topic created after the daemon started."""
    prefix = unique("rx").replace("-", "")
    key, group = unique("il1api"), unique("g")
    daemon = run_ilagent("-vv", "daemon", "--kafka_brokers", kafka_bootstrap,
                         "--kafka_group_id", group, "-e", f"^{prefix}\\..*",
                         "--kafka_offset_reset", "earliest",
                         "--kafka_config", "topic.metadata.refresh.interval.ms=1000")
    wait_until(lambda: "subscribed to" in daemon.output(), timeout=30, what="subscription")
    topic = create_topic(kafka_bootstrap, f"{prefix}.late")
    produce(kafka_bootstrap, topic, [{"integrationKey": key, "eventType": "ALERT",
                                      "summary": "from a topic made later"}])
    wait_until(lambda: sandbox.events(key), timeout=60, what="the event of the new topic")
    assert daemon.alive()


def test_config_show_names_sources_and_hides_secrets(secured_kafka: Any, tmp_path: Path) -> None:
    """flag > ILAGENT_* > TOML > default, each value with its source; the password masked."""
    toml = tmp_path / "ilagent.toml"
    password = secret("toml-password")
    toml.write_text(f'kafka_group_id = "from-file"\nmax_in_flight = 9\nkafka_sasl_password = '
                    f'"{password}"\n[kafka_config]\n"socket.timeout.ms" = 7000\n')
    done = subprocess.run(
        [sys.executable, "-m", "ilagent", "--config", str(toml), "config", "show", "--json",
         "--kafka_brokers", "b:9092", "-e", "a,b"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "ILAGENT_MAX_IN_FLIGHT": "12"})
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    settings = {s["name"]: (s["value"], s["source"]) for s in shown["settings"]}
    assert settings["kafka_brokers"] == ("b:9092", "flag")
    assert settings["event_topic"] == (["a,b"], "flag")
    assert settings["max_in_flight"] == (12, "env ILAGENT_MAX_IN_FLIGHT")
    assert settings["kafka_group_id"] == ("from-file", f"file {toml}")
    assert settings["shutdown_timeout"][1] == "default"
    properties = {p["name"]: p for p in shown["kafkaProperties"]}
    assert properties["socket.timeout.ms"]["value"] == "7000"
    assert properties["sasl.password"]["value"] == "********"
    assert password not in done.stdout
