"""MQTT over TLS, mutual TLS with certificate reload, and passwords, on the suite's Mosquitto."""

from __future__ import annotations

import shutil
import ssl
from pathlib import Path
from typing import Any

from test_mqtt_bridge import mqtt_args

from helpers import Sandbox, http, publish, subscribed, unique, wait_until


def test_tls_with_the_suite_ca_delivers(mosquitto: Any, sandbox: Sandbox,
                                        run_ilagent: Any) -> None:
    """--mqtt_tls with --mqtt_ca: the broker's certificate verifies, the event arrives."""
    topic, key = unique("events"), unique("il1api")
    daemon = run_ilagent(*mqtt_args(mosquitto.ports["tls"], topic, "--mqtt_qos", "1",
                                    "--mqtt_tls", "--mqtt_ca", str(mosquitto.certs / "ca.pem")))
    wait_until(lambda: subscribed(daemon), timeout=20, what="the subscription")
    context = ssl.create_default_context(cafile=str(mosquitto.certs / "ca.pem"))
    publish(mosquitto.ports["tls"], topic, [{"integrationKey": key, "summary": "over TLS"}],
            tls_context=context)
    wait_until(lambda: sandbox.events(key), timeout=20, what="the event")


def test_unknown_ca_exits_2_with_one_line(mosquitto: Any, run_ilagent: Any) -> None:
    """A broker certificate the given CA did not sign: one line naming it, exit 2."""
    daemon = run_ilagent(*mqtt_args(mosquitto.ports["tls"], unique("events"), "--mqtt_qos", "1",
                                    "--mqtt_tls", "--mqtt_ca",
                                    str(mosquitto.certs / "other-ca.pem")))
    assert daemon.proc.wait(30) == 2
    errors = [line for line in daemon.output().splitlines() if line.startswith("ilagent daemon: error:")]
    assert len(errors) == 1 and "certificate does not verify" in errors[0], daemon.output()
    assert "Traceback" not in daemon.output()


def test_wrong_password_exits_2_with_one_line(mosquitto: Any, run_ilagent: Any) -> None:
    """Mosquitto's password_file refuses a wrong --mqtt_password: one line, exit 2."""
    daemon = run_ilagent(*mqtt_args(mosquitto.ports["auth"], unique("events"), "--mqtt_qos", "1",
                                    "--mqtt_username", "ilagent"),
                         env={"ILAGENT_MQTT_PASSWORD": "not-" + mosquitto.password})
    assert daemon.proc.wait(30) == 2
    errors = [line for line in daemon.output().splitlines() if line.startswith("ilagent daemon: error:")]
    assert len(errors) == 1 and "--mqtt_password" in errors[0], daemon.output()
    assert "Traceback" not in daemon.output()


def test_right_password_from_the_environment_connects(mosquitto: Any, sandbox: Sandbox,
                                                      run_ilagent: Any) -> None:
    """The password from ILAGENT_MQTT_PASSWORD logs in; it never appears in the output."""
    topic, key = unique("events"), unique("il1api")
    daemon = run_ilagent(*mqtt_args(mosquitto.ports["auth"], topic, "--mqtt_qos", "1",
                                    "--mqtt_username", "ilagent"),
                         env={"ILAGENT_MQTT_PASSWORD": mosquitto.password})
    wait_until(lambda: subscribed(daemon), timeout=20, what="the subscription")
    publish(mosquitto.ports["plain"], topic, [{"integrationKey": key}])
    wait_until(lambda: sandbox.events(key), timeout=20, what="the event")


def test_replaced_client_certificate_is_used_without_restart(
        mosquitto: Any, sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """Mutual TLS: the broker's ACL lets only the certificate of ilagent-new read. Started
    with the old one, the daemon gets nothing; once the files are replaced on disk it
    reconnects with the new one by itself (no restart) and receives."""
    certs = mosquitto.certs
    cert, key_file = tmp_path / "client.pem", tmp_path / "client.key"
    shutil.copy(certs / "old.pem", cert)
    shutil.copy(certs / "old.key", key_file)
    topic, key = unique("events"), unique("il1api")
    port = __import__("broker").free_port()
    daemon = run_ilagent(*mqtt_args(mosquitto.ports["mtls"], topic, "--mqtt_qos", "1",
                                    "--mqtt_tls", "--mqtt_ca", str(certs / "ca.pem"),
                                    "--mqtt_client_cert", str(cert),
                                    "--mqtt_client_key", str(key_file),
                                    "--mqtt_cert_reload", "0.3", "-p", str(port),
                                    "--http_host", "127.0.0.1"))
    wait_until(lambda: subscribed(daemon), timeout=20, what="the subscription")
    publish(mosquitto.ports["plain"], topic, [{"integrationKey": key, "summary": "old cert"}])
    shutil.copy(certs / "new.key", key_file)
    shutil.copy(certs / "new.pem", cert)
    wait_until(lambda: "TLS files changed" in daemon.output()
               and daemon.output().count("MQTT subscribed") == 2, timeout=20,
               what="the reconnect with the new files")
    wait_until(lambda: "u'ilagent-new'" in mosquitto.log.read_text(), timeout=10,
               what="the broker's log of the new certificate's user")
    publish(mosquitto.ports["plain"], topic, [{"integrationKey": key, "summary": "new cert"}])
    wait_until(lambda: sandbox.events(key), timeout=20, what="the event")
    assert [b["summary"] for b in sandbox.bodies(key)] == ["new cert"]
    assert http("GET", f"http://127.0.0.1:{port}/ready/mqtt")[0] in (200, 204)


def test_tls_and_plain_listeners_mixed_up_exit_2_with_one_line(mosquitto: Any,
                                                              run_ilagent: Any) -> None:
    """--mqtt_tls against a plain listener, or no --mqtt_tls against a TLS one: one line
    saying which, exit 2, no traceback."""
    for port, extra, words in ((mosquitto.ports["plain"], ["--mqtt_tls"], "TLS handshake"),
                               (mosquitto.ports["tls"], [], "add --mqtt_tls")):
        daemon = run_ilagent(*mqtt_args(port, unique("events"), "--mqtt_qos", "1", *extra))
        assert daemon.proc.wait(30) == 2
        errors = [line for line in daemon.output().splitlines()
                  if line.startswith("ilagent daemon: error:")]
        assert len(errors) == 1 and words in errors[0], daemon.output()
        assert "Traceback" not in daemon.output() and "ERROR" not in daemon.output()


def test_a_port_that_is_no_mqtt_broker_exits_2_naming_host_and_port(
        sandbox: Sandbox, run_ilagent: Any) -> None:
    """-q naming an HTTP server's port (the sandbox's), which closes the connection as a TLS
    listener would: the one line names both causes, --mqtt_tls and -m/-q, exit 2."""
    port = int(sandbox.url.rsplit(":", 1)[1])
    daemon = run_ilagent(*mqtt_args(port, unique("events"), "--mqtt_qos", "1"))
    assert daemon.proc.wait(30) == 2
    errors = [line for line in daemon.output().splitlines()
              if line.startswith("ilagent daemon: error:")]
    assert len(errors) == 1, daemon.output()
    assert "add --mqtt_tls" in errors[0] and "check -m and -q" in errors[0], errors
