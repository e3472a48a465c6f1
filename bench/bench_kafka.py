"""Benchmarks of the Kafka delivery engine (issue 3): B1 throughput, B2 filtering, B3 latency, B4 RSS.

Every figure comes from real processes on this machine: one Apache Kafka 4.1 broker
(``tools/kafka/broker.py``), one ``ilagent sandbox`` standing in for ilert, and one
``ilagent daemon`` per measured run, all on 127.0.0.1. Each concurrent figure is reported next to
a serial baseline (``--max_in_flight 1``) measured in the same run. Pacing is off everywhere
(``--rate_limit_per_key 0 --rate_limit_total 0``): it is exactly what the figures must exclude.

* **B1** delivered events/s with 20 ms injected API latency over 1,000 alert keys: pre-produced
  events, timed from the first to the last event the sandbox accepted (its ms timestamps). Every
  event must arrive, and the events of each alert key in produced order.
* **B2** messages/s consumed, parsed and filtered out (1 % pass ``--filter_key type
  --filter_val ALARM``), timed by polling the daemon's ``ilagent_messages_consumed_total``.
* **B3** end-to-end latency, produce → sandbox accepts, at a steady 500 events/s; the producer's
  wall clock travels in the payload (``--forward_message_payload``) and is compared with the
  sandbox's receive time (millisecond resolution).
* **B4** the daemon's peak RSS (``VmHWM``) during the concurrent B1 runs.

Concurrent runs are repeated (``--repeat``) and the best is reported, all of them listed; each
run also records the CPU the daemon and the sandbox used and how contended the machine's cores
were, so that a figure taken on a busy machine can be recognised as such.

    .venv/bin/python bench/bench_kafka.py [--only b1,b2,b3] [--repeat 2] [--no-record]
                                          [--profile DIR]
"""

from __future__ import annotations

import argparse
import functools
import json
import pstats
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    RESULTS_FILE,
    DaemonProcess,
    Row,
    SandboxProcess,
    cpu_pressure_seconds,
    create_topic,
    load_broker_module,
    machine,
    parse_utc_ms,
    percentile,
    produce_all,
    replace_block,
    table,
    utc_date,
    wait_until,
)

HEADING = "## Kafka delivery engine (issue 3)"
BEGIN = "<!-- bench_kafka:begin (written by bench/bench_kafka.py; edits in here are lost) -->"
END = "<!-- bench_kafka:end -->"
COMMAND = "make bench"

EVENT_KEY = "il1apibenchkafka0000000001"
PARTITIONS = 4
ALERT_KEYS = 1000
PACING_OFF = ("--rate_limit_per_key", "0", "--rate_limit_total", "0")
# the mapping of ilert's Kafka guide: {"type":"ALARM","mCode":…,"comment":…,"state":"SET"}
MAPPING = (
    "--event_key",
    EVENT_KEY,
    "--map_key_alert_key",
    "mCode",
    "--map_key_summary",
    "comment",
    "--map_key_etype",
    "state",
    "--map_val_etype_alert",
    "SET",
    "--map_val_etype_accept",
    "ACK",
    "--map_val_etype_resolve",
    "CLR",
)
FILTER = ("--filter_key", "type", "--filter_val", "ALARM")

B1_EVENTS = 20_000
B1_SERIAL_EVENTS = 500
B1_LATENCY_MS = 20
B1_IN_FLIGHT = (64, 256)
B1_TARGET = 2_000.0
B2_MESSAGES = 200_000
B2_PASS_EVERY = 100  # 1 % pass the filter
B2_IN_FLIGHT = 64
B2_TARGET = 50_000.0
B3_RATE = 500
B3_SECONDS = 20
B3_IN_FLIGHT = 64
B3_TARGET_P99_MS = 50.0
B4_TARGET_MB = 150.0
STALL_TIMEOUT = 30.0  # a run fails when the sandbox sees no progress for this long
CONSUMED = 'ilagent_messages_consumed_total{source="kafka"}'
FILTERED = 'ilagent_messages_filtered_total{source="kafka"}'


class BenchError(RuntimeError):
    """A run went wrong (events lost or reordered, a process died): it yields no figure."""


@dataclass
class Env:
    """What every run shares: the broker, the sandbox and a directory for logs."""

    bootstrap: str
    sandbox: SandboxProcess
    workdir: Path
    profile_dir: Path | None = None

    def daemon(self, name: str, *args: str, profile: bool = False) -> DaemonProcess:
        """A daemon in a consumer group of its own; under cProfile if asked and enabled."""
        group = f"bench-{name}-{uuid.uuid4().hex[:8]}"
        profile_to = None
        if profile and self.profile_dir is not None:
            profile_to = self.profile_dir / f"{name}.prof"
        return DaemonProcess(
            ["--kafka_brokers", self.bootstrap, "--kafka_group_id", group, *args],
            sandbox=self.sandbox,
            log=self.workdir / f"daemon-{name}.log",
            profile_to=profile_to,
        )

    def topic(self, prefix: str) -> str:
        """A new topic with ``PARTITIONS`` partitions."""
        name = f"bench-{prefix}-{uuid.uuid4().hex[:8]}"
        return create_topic(self.bootstrap, name, partitions=PARTITIONS)


# ---- inputs ------------------------------------------------------------------------------


def alarm(index: int, *, kind: str = "ALARM", extra: dict[str, Any] | None = None) -> bytes:
    """One small machine message as ilert's Kafka guide shows them; ``index`` is in the comment."""
    message = {
        "type": kind,
        "mCode": f"M{index % ALERT_KEYS}",
        "comment": f"bench {index}",
        "state": "SET",
        **(extra or {}),
    }
    return json.dumps(message, separators=(",", ":")).encode()


def keyed(index: int) -> bytes:
    """The Kafka key of message ``index``: its alert key, so one alert stays in one partition."""
    return f"M{index % ALERT_KEYS}".encode()


def alarms(count: int) -> Iterator[tuple[bytes, bytes]]:
    """``count`` ALARM messages over 1,000 alert keys (B1)."""
    for index in range(count):
        yield keyed(index), alarm(index)


def mostly_telemetry(count: int) -> Iterator[tuple[bytes, bytes]]:
    """``count`` messages of which every ``B2_PASS_EVERY``-th is an ALARM (B2)."""
    for index in range(count):
        kind = "ALARM" if index % B2_PASS_EVERY == 0 else "TELEMETRY"
        yield keyed(index), alarm(index, kind=kind)


# ---- measuring ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """CPU counters of the daemon, the sandbox and the machine at one moment."""

    at: float
    daemon_cpu: float
    sandbox_cpu: float
    pressure: float | None


@dataclass(frozen=True)
class CpuUse:
    """Shares of one core used while a run was measured, and how contended the cores were.

    ``contention`` is the share of wall time in which some runnable task on the machine waited
    for a core (PSI); high values mean the figure measures a busy machine as much as the code.
    """

    daemon: float = 0.0
    sandbox: float = 0.0
    contention: float | None = None

    def __str__(self) -> str:
        waited = "n/a" if self.contention is None else f"{self.contention:.0%}"
        return f"CPU daemon {self.daemon:.0%}, sandbox {self.sandbox:.0%}, contention {waited}"


def sample(env: Env, daemon: DaemonProcess) -> Sample:
    """Read the CPU counters now."""
    return Sample(
        time.monotonic(), daemon.cpu_seconds(), env.sandbox.cpu_seconds(), cpu_pressure_seconds()
    )


def usage_since(env: Env, daemon: DaemonProcess, start: Sample | None) -> CpuUse:
    """CPU use from ``start`` until now (zeros when the interval is too short to tell)."""
    end = sample(env, daemon)
    wall = end.at - start.at if start is not None else 0.0
    if start is None or wall < 0.2:
        return CpuUse()
    contention = None
    if start.pressure is not None and end.pressure is not None:
        contention = (end.pressure - start.pressure) / wall
    return CpuUse(
        daemon=(end.daemon_cpu - start.daemon_cpu) / wall,
        sandbox=(end.sandbox_cpu - start.sandbox_cpu) / wall,
        contention=contention,
    )


def wait_accepted(env: Env, daemon: DaemonProcess, count: int) -> Sample | None:
    """Wait until the sandbox accepted ``count`` events, failing if progress stalls.

    Returns the CPU counters as they were when the first accepted event was seen.
    """
    seen, last_change = -1, time.monotonic()
    first: Sample | None = None
    while True:
        accepted = env.sandbox.accepted()
        now = time.monotonic()
        if accepted and first is None:
            first = sample(env, daemon)
        if accepted >= count:
            return first
        if not daemon.alive():
            raise BenchError(f"the daemon exited at {accepted}/{count}:\n{daemon.tail()}")
        if accepted != seen:
            seen, last_change = accepted, now
        elif now - last_change > STALL_TIMEOUT:
            raise BenchError(f"no progress for {STALL_TIMEOUT:.0f} s at {accepted}/{count}")
        time.sleep(0.05)


def received_in_order(env: Env, count: int) -> list[dict[str, Any]]:
    """The sandbox's events; fails unless each of ``bench 0..count-1`` arrived, per key in order."""
    events = env.sandbox.events()
    numbers = [int(str(event["body"]["summary"]).split()[1]) for event in events]
    missing = set(range(count)) - set(numbers)
    if missing:
        raise BenchError(f"{len(missing)} of {count} events never arrived")
    last: dict[int, int] = {}
    for number in numbers:  # in the sandbox's acceptance order
        key = number % ALERT_KEYS
        if last.get(key, -1) > number:
            raise BenchError(f"alert key M{key}: event {number} arrived after {last[key]}")
        last[key] = number
    return events


# ---- B1 and B4 ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryRun:
    """One B1 run."""

    max_in_flight: int
    per_second: float
    duplicates: int
    peak_rss_mb: float
    cpu: CpuUse

    def __str__(self) -> str:
        return (
            f"B1 max_in_flight {self.max_in_flight}: {self.per_second:,.0f} events/s, "
            f"{self.duplicates} duplicates, peak RSS {self.peak_rss_mb:.0f} MiB; {self.cpu}"
        )


def run_b1(env: Env, *, topic: str, events: int, max_in_flight: int) -> DeliveryRun:
    """Deliver the pre-produced ``topic`` through one daemon against 20 ms of API latency."""
    env.sandbox.reset()
    env.sandbox.fault(latency_ms=B1_LATENCY_MS)
    daemon = env.daemon(
        f"b1-{max_in_flight}",
        "-e",
        topic,
        "--kafka_offset_reset",
        "earliest",
        "--max_in_flight",
        str(max_in_flight),
        *PACING_OFF,
        *MAPPING,
        profile=max_in_flight == max(B1_IN_FLIGHT),
    )
    daemon.start()
    try:
        cpu = usage_since(env, daemon, wait_accepted(env, daemon, events))
        peak = daemon.peak_rss_mb()
    finally:
        daemon.stop()
    received = received_in_order(env, events)
    times = sorted(parse_utc_ms(str(event["time"])) for event in received)
    return DeliveryRun(
        max_in_flight=max_in_flight,
        per_second=(len(times) - 1) / max(times[-1] - times[0], 1e-3),
        duplicates=len(received) - events,
        peak_rss_mb=peak,
        cpu=cpu,
    )


# ---- B2 ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterRun:
    """One B2 run."""

    max_in_flight: int
    per_second: float
    cpu: CpuUse

    @property
    def cpu_us_per_message(self) -> float:
        """Daemon CPU per message, a figure less sensitive to a busy machine than the rate."""
        return self.cpu.daemon / self.per_second * 1e6

    def __str__(self) -> str:
        return (
            f"B2 max_in_flight {self.max_in_flight}: {self.per_second:,.0f} messages/s, "
            f"{self.cpu_us_per_message:.0f} us daemon CPU per message; {self.cpu}"
        )


def run_b2(env: Env, *, topic: str, messages: int, max_in_flight: int) -> FilterRun:
    """Consume the pre-produced ``topic`` with the filter flags; time it through /metrics."""
    env.sandbox.reset()
    daemon = env.daemon(
        f"b2-{max_in_flight}",
        "-e",
        topic,
        "--kafka_offset_reset",
        "earliest",
        "--max_in_flight",
        str(max_in_flight),
        *PACING_OFF,
        *MAPPING,
        *FILTER,
        profile=max_in_flight == B2_IN_FLIGHT,
    )
    daemon.start()
    try:
        wait_until(daemon.ready, timeout=60, what="the daemon to be ready")
        first: tuple[float, float] | None = None
        start: Sample | None = None
        deadline = time.monotonic() + 180
        while True:
            consumed = daemon.metrics().get(CONSUMED, 0.0)
            now = time.monotonic()
            if consumed and first is None:
                first, start = (now, consumed), sample(env, daemon)
            if consumed >= messages:
                break
            if now > deadline or not daemon.alive():
                raise BenchError(f"consumed only {consumed:.0f}/{messages}:\n{daemon.tail()}")
            time.sleep(0.02)
        cpu = usage_since(env, daemon, start)
        passing = len(range(0, messages, B2_PASS_EVERY))
        wait_accepted(env, daemon, passing)
        filtered = daemon.metrics().get(FILTERED, 0.0)
    finally:
        daemon.stop()
    if filtered != messages - passing:
        raise BenchError(f"filtered {filtered:.0f} messages, expected {messages - passing}")
    assert first is not None
    rate = (consumed - first[1]) / max(now - first[0], 1e-3)
    return FilterRun(max_in_flight=max_in_flight, per_second=rate, cpu=cpu)


# ---- B3 ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyRun:
    """One B3 run; ``floor_p99_ms`` is what a bare consumer in the bench process saw."""

    max_in_flight: int
    produced_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    floor_p50_ms: float
    floor_p99_ms: float
    cpu: CpuUse

    def __str__(self) -> str:
        return (
            f"B3 max_in_flight {self.max_in_flight}: p50 {self.p50_ms:.1f} ms, "
            f"p99 {self.p99_ms:.1f} ms, max {self.max_ms:.1f} ms at "
            f"{self.produced_per_second:.0f}/s (bare consumer p50 {self.floor_p50_ms:.1f}, "
            f"p99 {self.floor_p99_ms:.1f} ms); {self.cpu}"
        )


class BareConsumer:
    """A plain ``poll()`` consumer of the B3 topic in a thread of the bench process.

    It reads what the daemon reads and notes produce → consume latency: the floor that the
    broker and this machine set, next to which the daemon's own share can be judged.
    """

    def __init__(self, bootstrap: str, topic: str) -> None:
        from confluent_kafka import Consumer

        self._consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": f"bench-bare-{uuid.uuid4().hex[:8]}",
             "auto.offset.reset": "earliest", "enable.auto.commit": False}
        )  # fmt: skip
        self._consumer.subscribe([topic])
        self.latencies_ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bare-consumer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._consumer.poll(0.1)
            if message is not None and message.error() is None:
                sent = json.loads(message.value() or b"{}")["sentAt"]
                self.latencies_ms.append((time.time() - sent) * 1e3)

    def close(self) -> None:
        """Stop the thread and leave the group."""
        self._stop.set()
        self._thread.join()
        self._consumer.close()


def produce_steadily(bootstrap: str, topic: str, *, rate: int, seconds: int) -> float:
    """Produce ``rate`` alarms a second for ``seconds`` s, each carrying its send time.

    ``linger.ms=0`` makes the producer send each message at once, so the figure is the
    bridge's latency rather than the producer's batching. Returns the achieved rate.
    """
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": 1})
    count = rate * seconds
    start = time.monotonic()
    for index in range(count):
        # sleep, not poll(timeout): polling in small steps costs the 2 cores twice the CPU
        left = start + index / rate - time.monotonic()
        if left > 0:
            time.sleep(left)
        value = alarm(index, extra={"sentAt": time.time()})
        producer.produce(topic, key=keyed(index), value=value)
        producer.poll(0)
    elapsed = time.monotonic() - start
    if producer.flush(30) != 0:
        raise BenchError("the latency producer could not deliver every message")
    return count / elapsed


def run_b3(env: Env, *, max_in_flight: int) -> LatencyRun:
    """Start a daemon, wait until it holds its partitions, then produce at a steady rate."""
    env.sandbox.reset()
    topic = env.topic("b3")
    # earliest on a fresh topic: nothing can slip past the daemon while it pins its start
    daemon = env.daemon(
        f"b3-{max_in_flight}",
        "-e",
        topic,
        "--kafka_offset_reset",
        "earliest",
        "--max_in_flight",
        str(max_in_flight),
        *PACING_OFF,
        *MAPPING,
        "--forward_message_payload",
    )
    daemon.start()
    count = B3_RATE * B3_SECONDS
    try:
        wait_until(daemon.ready, timeout=60, what="the daemon to be assigned its partitions")
        bare = BareConsumer(env.bootstrap, topic)
        try:
            start = sample(env, daemon)
            produced_rate = produce_steadily(env.bootstrap, topic, rate=B3_RATE, seconds=B3_SECONDS)
            wait_accepted(env, daemon, count)
            cpu = usage_since(env, daemon, start)
        finally:
            bare.close()
    finally:
        daemon.stop()
    latencies = [
        (parse_utc_ms(str(event["time"])) - float(event["body"]["customDetails"]["sentAt"])) * 1e3
        for event in received_in_order(env, count)
    ]
    return LatencyRun(
        max_in_flight=max_in_flight,
        produced_per_second=produced_rate,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        max_ms=max(latencies),
        floor_p50_ms=percentile(bare.latencies_ms, 0.50),
        floor_p99_ms=percentile(bare.latencies_ms, 0.99),
        cpu=cpu,
    )


# ---- the suite ---------------------------------------------------------------------------

R = TypeVar("R", DeliveryRun, FilterRun, LatencyRun)


def repeated(
    times: int, run: Callable[[], R], *, better: Callable[[R], float]
) -> tuple[R, list[R]]:
    """Run ``times`` times; return the best run (highest ``better``) and all of them."""
    runs = []
    for _ in range(times):
        runs.append(run())
        print(f"  {runs[-1]}", flush=True)
    return max(runs, key=better), runs


def suite_b1(env: Env, repeat: int) -> list[Row]:
    """B1 and B4: a serial run on 500 events, then each max_in_flight on 20,000."""
    print(f"B1/B4: producing {B1_EVENTS:,} + {B1_SERIAL_EVENTS} events ...", flush=True)
    big, small = env.topic("b1"), env.topic("b1-serial")
    produce_all(env.bootstrap, big, alarms(B1_EVENTS))
    produce_all(env.bootstrap, small, alarms(B1_SERIAL_EVENTS))
    serial = run_b1(env, topic=small, events=B1_SERIAL_EVENTS, max_in_flight=1)
    print(f"  serial {serial}", flush=True)
    rows: list[Row] = []
    everything: list[DeliveryRun] = []
    for in_flight in B1_IN_FLIGHT:
        best, runs = repeated(
            repeat,
            functools.partial(run_b1, env, topic=big, events=B1_EVENTS, max_in_flight=in_flight),
            better=lambda r: r.per_second,
        )
        everything += runs
        rows.append(
            Row(
                f"B1 delivered events/s, 20 ms API, 1,000 keys, max_in_flight {in_flight}",
                f"{best.per_second:,.0f}/s ({best.per_second / serial.per_second:.0f}x)",
                f"{serial.per_second:,.0f}/s",
                f">= {B1_TARGET:,.0f}/s",
                best.per_second >= B1_TARGET,
                [f"runs: {', '.join(f'{r.per_second:,.0f}' for r in runs)}/s; best: {best.cpu}"],
            )
        )
    peak = max(everything, key=lambda r: r.peak_rss_mb)
    rows.append(
        Row(
            "B4 daemon peak RSS (VmHWM) during B1",
            f"{peak.peak_rss_mb:.0f} MiB",
            f"{serial.peak_rss_mb:.0f} MiB",
            f"<= {B4_TARGET_MB:.0f} MB",
            peak.peak_rss_mb <= B4_TARGET_MB,
            [f"highest of all B1 runs (max_in_flight {peak.max_in_flight})"],
        )
    )
    return rows


def suite_b2(env: Env, repeat: int) -> list[Row]:
    """B2: the same 200,000 messages, read by a serial daemon and then by a default one."""
    print(f"B2: producing {B2_MESSAGES:,} messages ...", flush=True)
    topic = env.topic("b2")
    produce_all(env.bootstrap, topic, mostly_telemetry(B2_MESSAGES))
    serial = run_b2(env, topic=topic, messages=B2_MESSAGES, max_in_flight=1)
    print(f"  serial {serial}", flush=True)
    best, runs = repeated(
        repeat,
        lambda: run_b2(env, topic=topic, messages=B2_MESSAGES, max_in_flight=B2_IN_FLIGHT),
        better=lambda r: r.per_second,
    )
    return [
        Row(
            f"B2 consumed+parsed+filtered msgs/s (1 % pass), max_in_flight {B2_IN_FLIGHT}",
            f"{best.per_second:,.0f}/s",
            f"{serial.per_second:,.0f}/s",
            f">= {B2_TARGET:,.0f}/s",
            best.per_second >= B2_TARGET,
            [
                f"runs: {', '.join(f'{r.per_second:,.0f}' for r in runs)}/s; best: "
                f"{best.cpu_us_per_message:.0f} us daemon CPU per message, {best.cpu}"
            ],
        )
    ]


def suite_b3(env: Env, repeat: int) -> list[Row]:
    """B3: a serial daemon and then a default one, each fed 500 events/s for 20 s."""
    print(f"B3: {B3_RATE} events/s for {B3_SECONDS} s per run ...", flush=True)
    serial = run_b3(env, max_in_flight=1)
    print(f"  serial {serial}", flush=True)
    best, runs = repeated(
        repeat, lambda: run_b3(env, max_in_flight=B3_IN_FLIGHT), better=lambda r: -r.p99_ms
    )
    return [
        Row(
            f"B3 produce→ilert latency p50 / p99 at {B3_RATE}/s, max_in_flight {B3_IN_FLIGHT}",
            f"{best.p50_ms:.0f} / {best.p99_ms:.0f} ms",
            f"{serial.p50_ms:.0f} / {serial.p99_ms:.0f} ms",
            f"p99 <= {B3_TARGET_P99_MS:.0f} ms",
            best.p99_ms <= B3_TARGET_P99_MS,
            [
                f"runs (p50/p99/max ms): "
                f"{', '.join(f'{r.p50_ms:.0f}/{r.p99_ms:.0f}/{r.max_ms:.0f}' for r in runs)}; "
                f"best: {best.cpu}; a bare consumer of the same topic saw p50/p99 "
                f"{best.floor_p50_ms:.0f}/{best.floor_p99_ms:.0f} ms"
            ],
        )
    ]


SUITES: dict[str, Callable[[Env, int], list[Row]]] = {
    "b1": suite_b1,
    "b2": suite_b2,
    "b3": suite_b3,
}


def record(rows: Sequence[Row], *, repeat: int) -> None:
    """Write the table, the machine, the date and the command into our section of RESULTS.md."""
    notes = [f"- {row.benchmark.split()[0]}: {note}" for row in rows for note in row.notes]
    lines = [
        f"Latest run: {utc_date()} — `{COMMAND}` (runs `bench/bench_kafka.py --repeat {repeat}`"
        " via `bench/run.py`); best of the repeated runs, all listed below.",
        "",
        table(rows),
        "",
        *notes,
        "",
        "Machine: " + "; ".join(f"{key} {value}" for key, value in machine().items()) + ".",
    ]
    replace_block(RESULTS_FILE, heading=HEADING, begin=BEGIN, end=END, block="\n".join(lines))


def print_profile(path: Path, *, top: int = 30) -> None:
    """The hottest functions of a cProfile dump, by own time."""
    if not path.exists():
        return
    print(f"\n--- {path}: top {top} by own time (event-loop thread only)")
    pstats.Stats(str(path)).sort_stats("tottime").print_stats(top)


def main(argv: Sequence[str] | None = None) -> int:
    """Start the broker and the sandbox, run the benchmarks, print and record the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="b1,b2,b3", help="comma list of b1,b2,b3 (B4 is in B1)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per concurrent figure")
    parser.add_argument("--no-record", action="store_true", help="leave RESULTS.md alone")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run the daemons of B1 (max_in_flight 256) and B2 under cProfile, dumps in DIR "
        "(slows them down: figures are then not recorded)",
    )
    args = parser.parse_args(argv)
    only = [name for name in SUITES if name in args.only.lower().split(",")]
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="ilagent-bench-kafka-"))
    print(f"logs in {workdir}; starting Kafka and the sandbox ...", flush=True)
    broker = sandbox = None
    rows: list[Row] = []
    ok = False
    try:
        broker = load_broker_module().start()
        sandbox = SandboxProcess(workdir=workdir).start()
        env = Env(broker.bootstrap, sandbox, workdir, profile_dir=args.profile)
        for name in only:
            rows += SUITES[name](env, max(1, args.repeat))
        ok = True
    finally:
        if sandbox is not None:
            sandbox.stop()
        if broker is not None:
            broker.destroy()
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"failed; logs kept in {workdir}", file=sys.stderr)
    print("\nKafka delivery engine (issue 3), against the sandbox on a real broker:\n")
    print(table(rows))
    for row in rows:
        for note in row.notes:
            print(f"  {row.benchmark.split()[0]}: {note}")
    if args.profile:
        for name in (f"b1-{max(B1_IN_FLIGHT)}", f"b2-{B2_IN_FLIGHT}"):
            print_profile(args.profile / f"{name}.prof")
    if not args.no_record and not args.profile and len(only) == len(SUITES):
        record(rows, repeat=args.repeat)
        print(f"\nrecorded in {RESULTS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
