"""Runs last: no secret the suite gave a daemon appears in any daemon's output.

Every process started through the ``run_ilagent`` fixture writes its stdout and stderr to a
file; tests that hand a daemon a secret (an HTTP token, a SASL password, a key not shaped like
an ilert key) take it from ``helpers.secret``. Run alone, it starts a daemon of its own with
secrets to check (also when the tests before it handed none out), so it never skips.
"""

from __future__ import annotations

from typing import Any

from helpers import DAEMON_LOGS, SECRETS, http, secret, status_or_none, wait_until


def _a_daemon_of_its_own(run_ilagent: Any) -> None:
    """Output to check when nothing else ran: a daemon at -vvv (its configuration dumped)
    given a token and a password, asked with the token and with a wrong one."""
    import broker

    token, port = secret("http-token"), broker.free_port()
    daemon = run_ilagent("daemon", "-vvv", "-p", str(port), "--http_host", "127.0.0.1", "-f",
                         "q.db3", "--http_token", token, "--kafka_brokers", "127.0.0.1:9",
                         "-e", "t", "--kafka_sasl_mechanism", "PLAIN",
                         "--kafka_security_protocol", "SASL_PLAINTEXT",
                         "--kafka_sasl_username", "u", env={
                             "ILAGENT_KAFKA_SASL_PASSWORD": secret("sasl-password")})
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: status_or_none("GET", f"{base}/health") == 204, timeout=30,
               what="the daemon to serve HTTP")
    for bearer in (token, "wrong"):
        http("GET", f"{base}/metrics", headers={"Authorization": f"Bearer {bearer}"})
    daemon.stop()


def test_no_secret_reached_a_log_line(run_ilagent: Any) -> None:
    """Whatever the daemons logged — errors, tracebacks, librdkafka, their config — no secret."""
    if not SECRETS or not [path for path in DAEMON_LOGS if path.exists()]:
        _a_daemon_of_its_own(run_ilagent)
    logs = [path for path in DAEMON_LOGS if path.exists()]
    assert logs and SECRETS
    leaks = [(path.name, value) for path in logs
             for value in SECRETS if value in path.read_text(errors="replace")]
    assert leaks == [], f"secrets in daemon output: {leaks[:5]}"
