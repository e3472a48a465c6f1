"""Files only their owner reads: the spool file (it holds integration keys), its WAL and shared
memory files, its lock file and the sandbox's ``--db`` file are created 0600 even when ilagent
starts with a umask of 022, and a spool file others could read is narrowed with one INFO line.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from http_daemon import event, start_daemon

from helpers import Sandbox, http, publish, subscribed, unique, wait_until


def umask_022() -> None:
    """Runs in the child before ilagent: the usual umask, under which files are 0644."""
    os.umask(0o022)


def mode(path: Path) -> int:
    """The permission bits of a file."""
    return stat.S_IMODE(os.stat(path).st_mode)


def modes(*paths: Path) -> dict[str, str]:
    """Each file's permission bits in octal, by name."""
    return {path.name: oct(mode(path)) for path in paths}


def sidecars(db: Path) -> list[Path]:
    """The file, SQLite's WAL and shared-memory files beside it."""
    return [db, Path(f"{db}-wal"), Path(f"{db}-shm")]


def test_the_intake_spool_its_wal_and_its_lock_are_owner_only(
        sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """A daemon started with umask 022 creates the spool, its -wal and -shm files and its
    lock file 0600, and they stay so once an event went through them."""
    db, key = tmp_path / "q.db3", unique("il1apimodes")
    daemon, base = start_daemon(run_ilagent, db, preexec_fn=umask_022)
    assert http("POST", f"{base}/api/events", event(key, "door open"))[0] == 202
    wait_until(lambda: sandbox.events(key), what="the event delivered")
    files = [*sidecars(db), Path(f"{db}.lock")]
    assert modes(*files) == {path.name: oct(0o600) for path in files}
    assert daemon.stop() == 0
    assert mode(db) == 0o600


def test_the_mqtt_buffer_spool_is_owner_only(mosquitto: Any, sandbox: Sandbox,
                                             run_ilagent: Any, tmp_path: Path) -> None:
    """The spool of --mqtt_buffer (no HTTP intake) and its lock are created 0600."""
    db, key, topic = tmp_path / "m.db3", unique("il1apimqtt"), unique("modes")
    daemon = run_ilagent("-vv", "daemon", "-m", "127.0.0.1", "-q", str(mosquitto.ports["plain"]),
                         "-e", topic, "--mqtt_buffer", "-f", str(db), preexec_fn=umask_022)
    wait_until(lambda: subscribed(daemon) or not daemon.alive(), what="the subscription")
    assert daemon.alive(), daemon.output()
    publish(mosquitto.ports["plain"], topic, [event(key, "door open")])
    wait_until(lambda: sandbox.events(key), what="the buffered event delivered")
    files = [*sidecars(db), Path(f"{db}.lock")]
    assert modes(*files) == {path.name: oct(0o600) for path in files}
    assert daemon.stop() == 0


def test_the_sandbox_db_is_owner_only(tmp_path: Path) -> None:
    """ilagent sandbox --db FILE, started with umask 022, keeps its state in 0600 files."""
    import broker

    db, port = tmp_path / "sandbox.db3", broker.free_port()
    with open(tmp_path / "sandbox.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ilagent", "sandbox", "-p", str(port),
                                 "--db", str(db)], stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=umask_022)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(f"{url}/sandbox/stats") or proc.poll() is not None,
                   what="the sandbox to listen")
        assert proc.poll() is None, (tmp_path / "sandbox.log").read_text()
        key = unique("il1apisandbox")
        assert http("POST", f"{url}/api/events", event(key, "x"))[0] == 202
        wait_until(lambda: all(p.exists() for p in sidecars(db)), what="the WAL files")
        assert modes(*sidecars(db)) == {p.name: oct(0o600) for p in sidecars(db)}
    finally:
        proc.terminate()
        proc.wait(15)
    assert mode(db) == 0o600


def test_a_spool_others_can_read_is_narrowed_with_one_info_line(
        sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """A spool file left 0644 (by ilagent 0.9, a copy, a restore) is 0600 once the daemon
    opened it, and one INFO line says so."""
    db = tmp_path / "q.db3"
    from ilagent.spool.db import QueueDB

    QueueDB(str(db)).close()
    os.chmod(db, 0o644)
    daemon, _base = start_daemon(run_ilagent, db, "-vv", preexec_fn=umask_022)
    assert mode(db) == 0o600
    assert daemon.stop() == 0
    lines = [line for line in daemon.output().splitlines() if "narrowed" in line]
    assert len(lines) == 1 and " INFO " in lines[0] and "0644" in lines[0], lines


def _answers(url: str) -> bool:
    try:
        return http("GET", url)[0] == 200
    except OSError:
        return False
