"""Shared pieces of the benchmarks: processes, the sandbox's JSON API, Kafka, tables, machine.

Everything here starts real processes (``python -m ilagent ...``) bound to 127.0.0.1 and hands
back objects whose ``stop()`` ends exactly the process they started, never anything else.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
RESULTS_FILE = ROOT / "bench" / "RESULTS.md"
KAFKA_VERSION = "4.1.2"  # the broker jars pinned in tools/kafka/pom.xml

T = TypeVar("T")


# ---- small utilities ---------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A work directory for logs: removed when the block succeeds, kept and named when not."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield workdir
    except BaseException:
        print(f"failed; logs kept in {workdir}", file=sys.stderr)
        raise
    shutil.rmtree(workdir, ignore_errors=True)


def wait_until(
    check: Callable[[], T], *, timeout: float, interval: float = 0.05, what: str = "condition"
) -> T:
    """Poll ``check`` until it returns something truthy; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (0..1) by the nearest-rank method; ``values`` need not be sorted."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def http(method: str, url: str, body: Any = None, *, timeout: float = 30.0) -> tuple[int, bytes]:
    """One HTTP request; returns (status, raw body) also for 4xx/5xx answers."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def http_json(method: str, url: str, body: Any = None) -> Any:
    """An HTTP request whose 2xx answer is JSON; raises on any other status."""
    status, raw = http(method, url, body)
    if not 200 <= status < 300:
        raise RuntimeError(f"{method} {url} answered {status}: {raw[:300]!r}")
    return json.loads(raw) if raw else None


def parse_utc_ms(text: str) -> float:
    """Epoch seconds of the sandbox's ``2026-01-02T03:04:05.678Z`` timestamps (ms resolution)."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# ---- processes ---------------------------------------------------------------------------


class Process:
    """One child process with its output in a log file; :meth:`stop` ends only that child."""

    def __init__(
        self, argv: Sequence[str], *, log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.argv = list(argv)
        self.log = log
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        """Start the child."""
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=self.log.parent
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def alive(self) -> bool:
        """True while the child runs."""
        return self.proc is not None and self.proc.poll() is None

    def tail(self, chars: int = 3000) -> str:
        """The end of the child's output, for error messages."""
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return ""

    def cpu_seconds(self) -> float:
        """User plus system CPU time the child has used so far (all its threads)."""
        return pid_cpu_seconds(self.pid)

    def peak_rss_mb(self) -> float:
        """The child's peak resident set size so far (``VmHWM``), in MiB."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        if match is None:
            raise RuntimeError("no VmHWM in /proc status")
        return int(match.group(1)) / 1024

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def stat_cpu_seconds(stat: str) -> float:
    """User plus system CPU seconds of a ``/proc/.../stat`` line (a process or a thread)."""
    fields = stat.rsplit(")", 1)[1].split()
    # fields[11] and [12] are utime and stime (fields 14 and 15 of proc(5)), in clock ticks
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pid_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds process ``pid`` has used so far (all its threads)."""
    return stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())


def own_cpu_seconds() -> float:
    """User plus system CPU seconds this process has used so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ilagent_argv(*args: str) -> list[str]:
    """The command line that runs ``ilagent`` from this interpreter's environment."""
    return [sys.executable, "-m", "ilagent", *args]


class SandboxProcess(Process):
    """``ilagent sandbox`` on 127.0.0.1 and its JSON API."""

    def __init__(self, *, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/api"
        super().__init__(
            ilagent_argv("sandbox", "--host", "127.0.0.1", "--port", str(self.port)),
            log=workdir / "sandbox.log",
        )

    def start(self) -> SandboxProcess:
        """Start the sandbox and wait until it answers."""
        super().start()
        wait_until(self._answers, timeout=30, what="the sandbox to listen")
        return self

    def _answers(self) -> bool:
        if not self.alive():
            raise RuntimeError(f"the sandbox exited:\n{self.tail()}")
        try:
            return http("GET", f"{self.url}/sandbox/stats", timeout=2)[0] == 200
        except OSError:
            return False

    def reset(self) -> None:
        """Forget every fault, alert, event and counter."""
        http_json("DELETE", f"{self.url}/sandbox/faults")
        http_json("DELETE", f"{self.url}/sandbox")

    def fault(self, **spec: Any) -> None:
        """Script a fault (see ``ilagent.sandbox.faults``)."""
        http_json("POST", f"{self.url}/sandbox/faults", spec)

    def accepted(self) -> int:
        """How many /api requests were answered 2xx since the last reset."""
        return int(http_json("GET", f"{self.url}/sandbox/stats")["accepted"])

    def events(self, *, page: int = 5000) -> list[dict[str, Any]]:
        """Every accepted event since the last reset, oldest first (paged)."""
        events: list[dict[str, Any]] = []
        since = 0
        while True:
            batch = http_json("GET", f"{self.url}/sandbox/events?since={since}&limit={page}")
            events.extend(batch)
            if len(batch) < page:
                return events
            since = batch[-1]["seq"]


class DaemonProcess(Process):
    """``ilagent daemon`` pointed at a sandbox, optionally with its HTTP port for /metrics."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        sandbox: SandboxProcess,
        log: Path,
        http_port: bool = True,
        profile_to: Path | None = None,
    ) -> None:
        self.http_port = free_port() if http_port else None
        extra = ["-p", str(self.http_port), "--http_host", "127.0.0.1"] if self.http_port else []
        argv = ilagent_argv("daemon", *extra, *args)
        if profile_to is not None:  # the event loop's thread under cProfile, written at exit
            argv[1:1] = ["-m", "cProfile", "-o", str(profile_to)]
        env = {"ILERT_API_URL": sandbox.api_url, "ILERT_BEAT_URL": sandbox.api_url}
        super().__init__(argv, log=log, env=env)

    def metrics(self) -> dict[str, float]:
        """The daemon's /metrics as ``{"name{labels}": value}``."""
        assert self.http_port is not None, "started without an HTTP port"
        status, raw = http("GET", f"http://127.0.0.1:{self.http_port}/metrics", timeout=5)
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        values: dict[str, float] = {}
        for line in raw.decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def serving(self) -> bool:
        """True once the HTTP server answers /metrics (before the group is joined)."""
        if not self.alive():
            raise RuntimeError(f"the daemon exited:\n{self.tail()}")
        try:
            self.metrics()
        except (OSError, RuntimeError):
            return False
        return True

    def ready(self) -> bool:
        """True once /ready answers 204 (joined the group, partitions assigned)."""
        if not self.alive():
            raise RuntimeError(f"the daemon exited:\n{self.tail()}")
        assert self.http_port is not None, "started without an HTTP port"
        try:
            return http("GET", f"http://127.0.0.1:{self.http_port}/ready", timeout=2)[0] == 204
        except OSError:
            return False


# ---- Kafka -------------------------------------------------------------------------------


def load_broker_module() -> Any:
    """``tools/kafka/broker.py`` as a module (it is a script, not a package)."""
    path = str(ROOT / "tools" / "kafka")
    if path not in sys.path:
        sys.path.insert(0, path)
    import broker

    return broker


def create_topic(bootstrap: str, name: str, *, partitions: int) -> str:
    """Create a topic and wait until the broker lists it."""
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    futures[name].result(30)
    wait_until(
        lambda: name in admin.list_topics(timeout=5).topics, timeout=30, what=f"topic {name}"
    )
    return name


def produce_all(bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes]]) -> int:
    """Produce ``(key, value)`` pairs as fast as the producer takes them; wait for all acks."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "compression.type": "none",
            "acks": "all",
            # a retried batch must not overtake later ones: per-key order is checked later
            "enable.idempotence": True,
            "queue.buffering.max.messages": 500_000,
        }
    )
    failures: list[str] = []

    def on_delivery(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    count = 0
    for key, value in messages:
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        count += 1
        if count % 10_000 == 0:
            producer.poll(0)
    if producer.flush(120) != 0 or failures:
        raise RuntimeError(f"not every message was acknowledged: {failures[:3]}")
    return count


# ---- reporting ---------------------------------------------------------------------------


@dataclass
class Row:
    """One line of a benchmark table."""

    benchmark: str
    figure: str
    baseline: str
    target: str
    met: bool | None  # None: no target to meet (a supporting figure)
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "-" if self.met is None else ("yes" if self.met else "NO")


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table (readable in a terminal too)."""
    header = ("benchmark", "figure", "serial baseline", "target", "met?")
    cells = [header, *((r.benchmark, r.figure, r.baseline, r.target, r.verdict) for r in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    import confluent_kafka

    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with contextlib.suppress(OSError):
        match = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        if match:
            ram = f"{int(match.group(1)) / 1024 / 1024:.1f} GiB"
    return {
        "cores (nproc)": str(os.cpu_count()),
        "CPU": cpu,
        "RAM": ram,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "confluent-kafka / librdkafka": (
            f"{confluent_kafka.__version__} / {confluent_kafka.libversion()[0]}"
        ),
        "Kafka broker": f"Apache Kafka {KAFKA_VERSION} (KRaft, one node, 127.0.0.1)",
    }


def cpu_pressure_seconds() -> float | None:
    """Machine-wide time some runnable task waited for a CPU (PSI ``/proc/pressure/cpu``).

    Its growth over a run, as a share of the run's wall time, says how contended the cores
    were; None where the kernel does not offer PSI.
    """
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/pressure/cpu").read_text().splitlines():
            if line.startswith("some "):
                return int(line.rsplit("total=", 1)[1]) / 1e6
    return None


def utc_date() -> str:
    """The current time as ``date -u`` prints it."""
    return dt.datetime.now(dt.UTC).strftime("%a %b %d %H:%M:%S UTC %Y")


def replace_block(path: Path, *, heading: str, begin: str, end: str, block: str) -> None:
    """Put ``block`` between the markers under ``heading`` in a Markdown file.

    Only that block changes: other sections of the file and hand-written text of the section
    around the markers are kept. A missing file, section or marker pair is created.
    """
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    generated = f"{begin}\n{block.rstrip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + generated + tail
    elif heading in text:
        head, rest = text.split(heading, 1)
        # insert right under the heading line, before the section's hand-written notes
        first_line, _, body = rest.partition("\n")
        text = f"{head}{heading}{first_line}\n\n{generated}\n{body}"
    else:
        text = text.rstrip() + f"\n\n{heading}\n\n{generated}\n"
    path.write_text(text)
