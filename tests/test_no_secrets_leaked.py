"""Runs last: no secret the suite gave a daemon appears in any daemon's output.

Every process started through the ``run_ilagent`` fixture writes its stdout and stderr to a
file; tests that hand a daemon a secret (an HTTP token, a SASL password, a key not shaped like
an ilert key) take it from ``helpers.secret``. Needs the rest of the suite to have run: alone
it has nothing to read and is skipped.
"""

from __future__ import annotations

import pytest

from helpers import DAEMON_LOGS, SECRETS


def test_no_secret_reached_a_log_line() -> None:
    """Whatever the daemons logged — errors, tracebacks, librdkafka, their config — no secret."""
    logs = [path for path in DAEMON_LOGS if path.exists()]
    if not logs or not SECRETS:
        pytest.skip("run with the whole suite: no daemon output or secrets to check")
    leaks = [(path.name, value) for path in logs
             for value in SECRETS if value in path.read_text(errors="replace")]
    assert leaks == [], f"secrets in daemon output: {leaks[:5]}"
