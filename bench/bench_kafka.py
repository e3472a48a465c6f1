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
import pstats
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    RESULTS_FILE,
    Row,
    SandboxProcess,
    load_broker_module,
    machine,
    produce_all,
    replace_block,
    table,
    utc_date,
)
from bench.kafka_runs import (
    B3_RATE,
    B3_SECONDS,
    B3_WARMUP_SECONDS,
    DeliveryRun,
    Env,
    FilterRun,
    LatencyRun,
    alarms,
    mostly_telemetry,
    run_b1,
    run_b2,
    run_b3,
)

HEADING = "## Kafka delivery engine (issue 3)"
BEGIN = "<!-- bench_kafka:begin (written by bench/bench_kafka.py; edits in here are lost) -->"
END = "<!-- bench_kafka:end -->"
COMMAND = "make bench"

B1_EVENTS = 20_000
B1_SERIAL_EVENTS = 500
B1_IN_FLIGHT = (64, 256)
B1_TARGET = 2_000.0
B2_MESSAGES = 200_000
B2_IN_FLIGHT = 64
B2_TARGET = 50_000.0
B3_IN_FLIGHT = 64
B3_TARGET_P99_MS = 50.0
B4_TARGET_MB = 150.0


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
            functools.partial(
                run_b1,
                env,
                topic=big,
                events=B1_EVENTS,
                max_in_flight=in_flight,
                profile=in_flight == max(B1_IN_FLIGHT),
            ),
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
                [
                    f"max_in_flight {in_flight} runs: "
                    f"{', '.join(f'{r.per_second:,.0f}' for r in runs)}/s; best: {best.cpu}"
                ],
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
        functools.partial(
            run_b2,
            env,
            topic=topic,
            messages=B2_MESSAGES,
            max_in_flight=B2_IN_FLIGHT,
            profile=True,
        ),
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
    """B3: a serial daemon and then a default one, each fed 500 events/s for 22 s, the first 2 s (producer warm-up) not counted."""
    print(f"B3: {B3_RATE} events/s for {B3_SECONDS} s per run (first {B3_WARMUP_SECONDS:.0f} s not counted) ...", flush=True)
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
        "CPU figures are shares of one core while the run was measured; contention is the share"
        " of that time in which some runnable task on the machine waited for a core (PSI).",
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
