"""Fetch, start and stop a single-node Apache Kafka (KRaft) on 127.0.0.1, without Docker.

Used by the test suite (a session fixture), the benchmarks and ``make demo``.

    python tools/kafka/broker.py fetch              # resolve the jars into .kafka-libs/ (cached)
    python tools/kafka/broker.py start --dir D      # format + start; prints the bootstrap address
    python tools/kafka/broker.py stop --dir D       # SIGTERM the broker's JVM, then SIGKILL

The jars come from Maven (``tools/kafka/pom.xml``); ``.kafka-libs/`` is ignored by git.
Only the broker's own PID is ever signalled.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script or imported from tools/kafka on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import tls

ROOT = Path(__file__).resolve().parents[2]
POM = ROOT / "tools" / "kafka" / "pom.xml"
DEFAULT_LIBS = ROOT / ".kafka-libs"
READY_TIMEOUT = 90.0

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{cport}
listeners=PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:{ssl_port},SASL_SSL://127.0.0.1:{sasl_port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:{ssl_port},SASL_SSL://127.0.0.1:{sasl_port}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
# TLS with PEM files made at start (tls.py); the SSL listener wants client certificates
ssl.keystore.type=PEM
ssl.keystore.location={tls}/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location={tls}/ca.pem
listener.name.ssl.ssl.client.auth=required
# SASL_SSL with SCRAM-SHA-512; the user is created when the storage is formatted
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
log.dirs={workdir}/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# first join of a new group without the default 3 s delay
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
"""

LOG4J2_PROPERTIES = """\
status = warn
name = kafka-test
property.logdir = ${sys:kafka.logs.dir:-.}
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${logdir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.reqchan.name = kafka.network.RequestChannel$
logger.reqchan.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
"""


SCRAM_USER = "ilagent"


@dataclass
class Broker:
    """A running broker: its JVM process, bootstrap addresses and work directory.

    Three client listeners: ``bootstrap`` (PLAINTEXT), ``ssl_bootstrap`` (TLS with client
    certificates signed by ``tls/ca.pem``: ``tls/client.pem`` + ``tls/client.key``) and
    ``sasl_ssl_bootstrap`` (TLS + SCRAM-SHA-512 as ``SCRAM_USER``/``scram_password``).
    """

    proc: subprocess.Popen[bytes] | None
    bootstrap: str
    workdir: Path
    port: int
    cport: int
    ssl_bootstrap: str = ""
    sasl_ssl_bootstrap: str = ""
    scram_password: str = ""

    @property
    def tls(self) -> Path:
        """The directory of the CA, broker and client PEM files."""
        return self.workdir / "tls"

    def stop(self, grace: float = 30.0) -> None:
        """Stop the JVM (SIGTERM, then SIGKILL after ``grace``); keeps the data directory."""
        if self.proc is None:
            stop_pid(self.pid(), grace)
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def start_again(self, libs: Path = DEFAULT_LIBS) -> None:
        """Start the same broker again on the same ports and data (a restart after stop)."""
        self.proc = _launch(libs, self.workdir)
        _wait_ready(self.bootstrap, self.proc, self.workdir)

    def pid(self) -> int | None:
        if self.proc is not None:
            return self.proc.pid
        pidfile = self.workdir / "broker.pid"
        return int(pidfile.read_text()) if pidfile.exists() else None

    def destroy(self) -> None:
        """Stop the broker and delete its work directory."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def fetch(libs: Path = DEFAULT_LIBS) -> Path:
    """Resolve the broker's jars into ``libs`` once; later calls reuse them."""
    marker = libs / ".complete"
    if marker.exists():
        return libs
    libs.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "mvn", "-B", "-q", "-f", str(POM), "dependency:copy-dependencies",
            "-DincludeScope=runtime", f"-DoutputDirectory={libs}",
        ],
        check=True,
    )
    marker.write_text("ok\n")
    return libs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(workdir: Path | None = None, libs: Path = DEFAULT_LIBS) -> Broker:
    """Format a fresh KRaft node in ``workdir`` (a new temp dir by default) and start it."""
    fetch(libs)
    workdir = Path(workdir or tempfile.mkdtemp(prefix="ilagent-kafka-"))
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    port, cport, ssl_port, sasl_port = free_port(), free_port(), free_port(), free_port()
    tls.make_certificates(workdir / "tls")
    password = uuid.uuid4().hex
    (workdir / "server.properties").write_text(
        SERVER_PROPERTIES.format(port=port, cport=cport, ssl_port=ssl_port,
                                 sasl_port=sasl_port, workdir=workdir, tls=workdir / "tls")
    )
    (workdir / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
    cluster_id = "-"
    while cluster_id.startswith("-"):  # the storage tool would read a leading "-" as an option
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    subprocess.run(
        ["java", "-Xmx256m", *_log_opts(workdir), "-cp", f"{libs}/*", "kafka.tools.StorageTool",
         "format", "-t", cluster_id, "-c", str(workdir / "server.properties"),
         "--add-scram", f"SCRAM-SHA-512=[name={SCRAM_USER},password={password}]"],
        check=True, timeout=180, stdout=subprocess.DEVNULL,
    )
    proc = _launch(libs, workdir)
    bootstrap = f"127.0.0.1:{port}"
    (workdir / "bootstrap").write_text(bootstrap)
    _wait_ready(bootstrap, proc, workdir)
    return Broker(proc=proc, bootstrap=bootstrap, workdir=workdir, port=port, cport=cport,
                  ssl_bootstrap=f"127.0.0.1:{ssl_port}",
                  sasl_ssl_bootstrap=f"127.0.0.1:{sasl_port}", scram_password=password)


def stop_pid(pid: int | None, grace: float = 30.0) -> None:
    """SIGTERM one PID, wait up to ``grace`` seconds, then SIGKILL it."""
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while _alive(pid):
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie that is not our child still answers kill(0); /proc tells
    with contextlib.suppress(OSError):
        status = Path(f"/proc/{pid}/status").read_text()
        if "\nState:\tZ" in status:
            return False
    return True


def _log_opts(workdir: Path) -> list[str]:
    return [
        f"-Dlog4j2.configurationFile={workdir}/log4j2.properties",
        f"-Dkafka.logs.dir={workdir}/logs",
    ]


def _launch(libs: Path, workdir: Path) -> subprocess.Popen[bytes]:
    out = open(workdir / "logs" / "stdout.log", "ab")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(
        ["java", "-Xms128m", "-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
         "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true", *_log_opts(workdir),
         "-cp", f"{libs}/*", "kafka.Kafka", str(workdir / "server.properties")],
        stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
    )
    out.close()
    (workdir / "broker.pid").write_text(str(proc.pid))
    return proc


def _tail(workdir: Path) -> str:
    parts = []
    for name in ("stdout.log", "server.log"):
        path = workdir / "logs" / name
        with contextlib.suppress(OSError):
            parts.append(f"--- {path}\n{path.read_text(errors='replace')[-3000:]}")
    return "\n".join(parts)


def _wait_ready(bootstrap: str, proc: subprocess.Popen[bytes], workdir: Path) -> None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode}\n{_tail(workdir)}")
        with contextlib.suppress(KafkaException):
            if admin.list_topics(timeout=1).brokers:
                return
        time.sleep(0.2)
    raise TimeoutError(f"broker not ready after {READY_TIMEOUT:.0f}s\n{_tail(workdir)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fetch", help="resolve the broker jars into .kafka-libs/")
    p_start = sub.add_parser("start", help="format and start a broker; print its bootstrap")
    p_start.add_argument("--dir", type=Path, required=True, help="work directory (created)")
    p_stop = sub.add_parser("stop", help="stop the broker started in --dir")
    p_stop.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.cmd == "fetch":
        print(fetch())
    elif args.cmd == "start":
        broker = start(args.dir)
        broker.proc = None  # detach: the JVM runs in its own session
        print(broker.bootstrap)
    else:
        pidfile = args.dir / "broker.pid"
        stop_pid(int(pidfile.read_text()) if pidfile.exists() else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
