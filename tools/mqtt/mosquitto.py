"""A real Mosquitto (Debian's package) for the tests and the demo, on 127.0.0.1 only.

``start(directory)`` writes a configuration and runs ``/usr/sbin/mosquitto`` with four listeners:

* ``plain``: anonymous MQTT;
* ``auth``: user ``ilagent`` with a random password (``password_file``), no anonymous access;
* ``tls``: TLS with a server certificate from the suite's CA, anonymous;
* ``mtls``: TLS that requires a client certificate of that CA and takes its common name as the
  user name; an ACL lets only the user ``ilagent-new`` read, so a test can tell which client
  certificate is in use.

Persistence is on, and the per-client limits are raised: by default Mosquitto keeps at most 20
unacknowledged QoS 1/2 messages in flight (``max_inflight_messages``) and queues at most 1,000
more for a client (``max_queued_messages``), dropping the rest silently — a production broker
feeding ilagent needs the same settings raised.
"""

from __future__ import annotations

import getpass
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kafka"))

import tls

MOSQUITTO = Path(os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto"))
PASSWD = Path(os.environ.get("MOSQUITTO_PASSWD", "/usr/bin/mosquitto_passwd"))
USER = "ilagent"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mosquitto:
    """A running broker: its ports, the password of ``ilagent``, the certificate files."""

    directory: Path
    ports: dict[str, int]
    password: str
    certs: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log(self) -> Path:
        return self.directory / "mosquitto.log"

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        for port in self.ports.values():
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    output = (self.directory / "stdout.log").read_text()[-2000:]
                    raise RuntimeError(f"mosquitto exited:\n{output}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"mosquitto not listening on {port}") from None
                    time.sleep(0.05)

    def restart(self) -> None:
        """Stop and start again with the same configuration, ports and persisted sessions."""
        self.stop()
        self.start_again()

    def start_again(self) -> None:
        """Start after :meth:`stop` (an outage of the test's own length), with the same
        configuration, ports and persisted sessions; returns once every listener answers."""
        self._spawn()
        self.wait_ready()

    def _spawn(self) -> None:
        with open(self.directory / "stdout.log", "ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                [str(MOSQUITTO), "-c", str(self.directory / "mosquitto.conf")], stdout=log,
                stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(directory: Path) -> Mosquitto:
    """Configure and start Mosquitto in ``directory``; returns once every listener answers."""
    if not MOSQUITTO.exists():
        raise RuntimeError(f"{MOSQUITTO} not found: install Debian's mosquitto package")
    directory.mkdir(parents=True, exist_ok=True)
    certs = tls.make_certificates(directory / "certs")
    tls.client_certificate(certs, "old", "ilagent-old")
    tls.client_certificate(certs, "new", "ilagent-new")
    password = secrets.token_urlsafe(12)
    passwords = directory / "passwords"
    passwords.touch(mode=0o600)
    subprocess.run([str(PASSWD), "-b", str(passwords), USER, password], check=True,
                   capture_output=True, timeout=30)
    acl = directory / "acl"
    acl.write_text("user ilagent-new\ntopic readwrite #\n")
    ports = {name: free_port() for name in ("plain", "auth", "tls", "mtls")}
    (directory / "data").mkdir(exist_ok=True)
    server = (f"cafile {certs / 'ca.pem'}\ncertfile {certs / 'broker.pem'}\n"
              f"keyfile {certs / 'broker.key'}\n")
    config = directory / "mosquitto.conf"
    config.write_text(
        # as root, Mosquitto would switch to the user "mosquitto", who cannot read these files
        f"user {getpass.getuser()}\nper_listener_settings true\n"
        f"persistence true\npersistence_location {directory / 'data'}/\n"
        "autosave_interval 1\n"
        "max_inflight_messages 1000\nmax_queued_messages 100000\n"
        f"log_dest file {directory / 'mosquitto.log'}\nlog_type error\nlog_type warning\n"
        "log_type notice\nlog_type information\n"
        f"listener {ports['plain']} 127.0.0.1\nallow_anonymous true\n"
        f"listener {ports['auth']} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {passwords}\n"
        f"listener {ports['tls']} 127.0.0.1\nallow_anonymous true\n{server}"
        f"listener {ports['mtls']} 127.0.0.1\n{server}require_certificate true\n"
        f"use_identity_as_username true\nallow_anonymous false\nacl_file {acl}\n")
    broker = Mosquitto(directory=directory, ports=ports, password=password, certs=certs)
    broker._spawn()
    try:
        broker.wait_ready()
    except BaseException:
        broker.stop()
        raise
    return broker


def main() -> None:
    """``python tools/mqtt/mosquitto.py DIR``: run a broker until interrupted (manual trials)."""
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ilagent-mosquitto")
    shutil.rmtree(target, ignore_errors=True)
    broker = start(target)
    print(f"mosquitto {broker.ports}, user {USER} password {broker.password}, certs {broker.certs}")
    try:
        assert broker.process is not None
        broker.process.wait()
    except KeyboardInterrupt:
        broker.stop()


if __name__ == "__main__":
    main()
