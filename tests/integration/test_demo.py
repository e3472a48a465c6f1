"""`make demo` as a new user runs it: every alert state shows within 60 s; Ctrl+C stops it all."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import Sandbox, status_or_none, wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_demo_tells_its_story_and_cleans_up(tmp_path: Path) -> None:
    """The demo shows a PENDING, an ACCEPTED and a RESOLVED alert within 60 s and stops on SIGINT."""
    import broker

    sandbox_port, daemon_port = broker.free_port(), broker.free_port()
    log = tmp_path / "demo.out"
    with open(log, "wb") as out:
        demo = subprocess.Popen(
            [sys.executable, str(ROOT / "tools" / "demo.py"), "--sandbox-port", str(sandbox_port),
             "--daemon-port", str(daemon_port), "--workdir", str(tmp_path / "demo")],
            stdout=out, stderr=subprocess.STDOUT)
    try:
        started = time.monotonic()
        sandbox = Sandbox(f"http://127.0.0.1:{sandbox_port}")

        def states() -> set[str]:
            if status_or_none("GET", f"{sandbox.url}/sandbox/stats") != 200:
                return set()
            return {a["status"] for a in sandbox.alerts()}

        wait_until(lambda: states() >= {"PENDING", "ACCEPTED", "RESOLVED"}, timeout=60,
                   interval=0.5, what="an alert in each state")
        wait_until(lambda: any("via MQTT" in a.get("summary", "") for a in sandbox.alerts()),
                   timeout=60, interval=0.5, what="the alert told over MQTT")
        wait_until(lambda: sandbox.level_emails("plant3", 0) == ["bob@example.com"],
                   timeout=60, interval=0.5, what="the shift change")
        assert time.monotonic() - started < 90
        assert f"http://127.0.0.1:{sandbox_port}/" in log.read_text()
        demo.send_signal(signal.SIGINT)
        assert demo.wait(60) == 0, log.read_text()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert status_or_none("GET", f"http://127.0.0.1:{sandbox_port}/sandbox/stats") is None
    assert status_or_none("GET", f"http://127.0.0.1:{daemon_port}/health") is None
    assert "demo: stopped" in log.read_text()
