"""One measured run of each Kafka benchmark: start a daemon, drive it, check, return figures.

The workload (messages, mapping flags, the 20 ms fault, the 500/s rate) and the checks live
here; ``bench_kafka.py`` decides how often to run what, against which targets, and reports.
A run fails with :class:`BenchError` rather than report a figure when an event was lost, an
alert key's events arrived out of order, or the daemon died or stalled.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    DaemonProcess,
    SandboxProcess,
    cpu_pressure_seconds,
    create_topic,
    parse_utc_ms,
    percentile,
    wait_until,
)

EVENT_KEY = "il1apibenchkafka0000000001"
PARTITIONS = 4
ALERT_KEYS = 1000
PACING_OFF = ("--rate_limit_per_key", "0", "--rate_limit_total", "0")
# the mapping of ilert's Kafka guide: {"type":"ALARM","mCode":…,"comment":…,"state":"SET"}
# fmt: off
MAPPING = (
    "--event_key", EVENT_KEY, "--map_key_alert_key", "mCode", "--map_key_summary", "comment",
    "--map_key_etype", "state", "--map_val_etype_alert", "SET", "--map_val_etype_accept", "ACK",
    "--map_val_etype_resolve", "CLR",
)
# fmt: on
FILTER = ("--filter_key", "type", "--filter_val", "ALARM")


B1_LATENCY_MS = 20
B2_PASS_EVERY = 100  # 1 % pass the filter
B3_RATE = 500
B3_SECONDS = 22
# the first messages wait for the producer's own connection and metadata (about 1 s on this
# box, seen by a bare consumer too): the steady state starts after this
B3_WARMUP_SECONDS = 2.0
STALL_TIMEOUT = 30.0  # a run fails when the sandbox sees no progress for this long
CONSUMED = 'ilagent_messages_consumed_total{source="kafka"}'
FILTERED = 'ilagent_messages_filtered_total{route="default",source="kafka"}'


def consuming(topic: str, max_in_flight: int) -> tuple[str, ...]:
    """The daemon flags every run shares: its topic from the start, pacing off, the mapping."""
    return (
        "-e",
        topic,
        "--kafka_offset_reset",
        "earliest",
        "--max_in_flight",
        str(max_in_flight),
        *PACING_OFF,
        *MAPPING,
    )


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
    """The sandbox's events; fails unless each of ``bench 0..count-1`` arrived, per key in order.

    Order is judged on first arrivals; a repeated event (at-least-once) is counted by the
    caller as a duplicate, and the message names the key's whole arrival sequence.
    """
    events = env.sandbox.events()
    numbers = [int(str(event["body"]["summary"]).split()[1]) for event in events]
    missing = set(range(count)) - set(numbers)
    if missing:
        raise BenchError(f"{len(missing)} of {count} events never arrived")
    seen: set[int] = set()
    last: dict[int, int] = {}
    for number in numbers:  # in the sandbox's acceptance order
        if number in seen:
            continue
        seen.add(number)
        key = number % ALERT_KEYS
        if last.get(key, -1) > number:
            sequence = [n for n in numbers if n % ALERT_KEYS == key]
            raise BenchError(f"alert key M{key} reordered; arrivals: {sequence}")
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


def run_b1(
    env: Env, *, topic: str, events: int, max_in_flight: int, profile: bool = False
) -> DeliveryRun:
    """Deliver the pre-produced ``topic`` through one daemon against 20 ms of API latency."""
    env.sandbox.reset()
    env.sandbox.fault(latency_ms=B1_LATENCY_MS)
    daemon = env.daemon(
        f"b1-{max_in_flight}",
        *consuming(topic, max_in_flight),
        profile=profile,
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


def run_b2(
    env: Env, *, topic: str, messages: int, max_in_flight: int, profile: bool = False
) -> FilterRun:
    """Consume the pre-produced ``topic`` with the filter flags; time it through /metrics."""
    env.sandbox.reset()
    daemon = env.daemon(
        f"b2-{max_in_flight}",
        *consuming(topic, max_in_flight),
        *FILTER,
        profile=profile,
    )
    daemon.start()
    try:
        # not /ready (a second or more after the start): a fast daemon is done by then
        wait_until(daemon.serving, timeout=60, what="the daemon's /metrics")
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
        self.samples: list[tuple[float, float]] = []  # (sent at, latency ms)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bare-consumer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._consumer.poll(0.1)
            if message is not None and message.error() is None:
                sent = json.loads(message.value() or b"{}")["sentAt"]
                self.samples.append((sent, (time.time() - sent) * 1e3))

    def latencies_ms(self, since: float) -> list[float]:
        """Latencies of the messages sent at or after ``since`` (epoch seconds)."""
        return [latency for sent, latency in self.samples if sent >= since]

    def close(self) -> None:
        """Stop the thread and leave the group."""
        self._stop.set()
        self._thread.join()
        self._consumer.close()


def produce_steadily(bootstrap: str, topic: str, *, rate: int, seconds: int) -> float:
    """Produce ``rate`` alarms a second for ``seconds`` s, each carrying its send time.

    ``linger.ms=0`` makes the producer send each message at once, so the figure is the
    bridge's latency rather than the producer's batching; idempotence keeps each key's order
    through retries. Returns the achieved rate.
    """
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 0, "enable.idempotence": True}
    )
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
        *consuming(topic, max_in_flight),
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
    samples = [
        (
            sent := float(event["body"]["customDetails"]["sentAt"]),
            (parse_utc_ms(str(event["time"])) - sent) * 1e3,
        )
        for event in received_in_order(env, count)
    ]
    steady = min(sent for sent, _ in samples) + B3_WARMUP_SECONDS
    latencies = [latency for sent, latency in samples if sent >= steady]
    floor = bare.latencies_ms(steady)
    return LatencyRun(
        max_in_flight=max_in_flight,
        produced_per_second=produced_rate,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        max_ms=max(latencies),
        floor_p50_ms=percentile(floor, 0.50),
        floor_p99_ms=percentile(floor, 0.99),
        cpu=cpu,
    )
