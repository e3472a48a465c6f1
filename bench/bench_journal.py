"""What the journal costs (issue 25): daemon CPU µs per delivered event, journal on against off.

One Apache Kafka 4.1 broker and one ``ilagent sandbox`` (20 ms of API latency, as B1), one topic
of 20,000 pre-produced alarms over 1,000 alert keys, and per run a fresh daemon in a consumer
group of its own with ``-p`` and a spool file of its own — so the journal is on by default
beside it (``<spool>.journal.db``), or ``--journal off``. Each run measures the daemon's CPU
(user + system, all threads, ``/proc``) from the first event the sandbox accepted to the last,
divided by the events accepted in between: start-up is left out, the journal's writes (every
0.5 s, in a thread) are in. Runs are interleaved A/B, the order swapped each round, because the
machine has two cores and other work runs on it; the best of the rounds is reported per side.
Each "on" run checks that the journal holds every event.

    .venv/bin/python bench/bench_journal.py [--rounds 3] [--events 20000] [--no-record]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    RESULTS_FILE,
    SandboxProcess,
    load_broker_module,
    machine,
    produce_all,
    replace_block,
    utc_date,
)
from bench.kafka_runs import (
    B1_LATENCY_MS,
    STALL_TIMEOUT,
    BenchError,
    CpuUse,
    Env,
    alarms,
    consuming,
    sample,
    usage_since,
)

HEADING = "## Journal cost (issue 25): CPU per delivered event, journal on and off"
BEGIN = "<!-- bench_journal:begin (written by bench/bench_journal.py; edits in here are lost) -->"
END = "<!-- bench_journal:end -->"
IN_FLIGHT = 64
TARGET = 0.10  # the journal may add at most 10 % CPU per delivered event


@dataclass(frozen=True)
class Run:
    """One measured daemon run."""

    journal: bool
    cpu_us_per_event: float
    events: int
    cpu: CpuUse

    def __str__(self) -> str:
        side = "on " if self.journal else "off"
        return (f"journal {side}: {self.cpu_us_per_event:,.0f} µs CPU per delivered event "
                f"over {self.events:,} events; {self.cpu}")


def run(env: Env, *, topic: str, events: int, journal: bool, number: int) -> Run:
    """Deliver the whole topic through one daemon; its CPU per event between first and last."""
    env.sandbox.reset()
    env.sandbox.fault(latency_ms=B1_LATENCY_MS)
    spool = env.workdir / f"run-{number}.db3"
    daemon = env.daemon(f"journal-{number}", *consuming(topic, IN_FLIGHT), "-f", str(spool),
                        *(() if journal else ("--journal", "off")))
    daemon.start()
    try:
        first_count, first, last_change, seen = 0, None, time.monotonic(), -1
        while True:
            accepted = env.sandbox.accepted()
            if accepted and first is None:
                first, first_count = sample(env, daemon), accepted
            if accepted >= events:
                break
            if not daemon.alive():
                raise BenchError(f"the daemon exited at {accepted}/{events}:\n{daemon.tail()}")
            if accepted != seen:
                seen, last_change = accepted, time.monotonic()
            elif time.monotonic() - last_change > STALL_TIMEOUT:
                raise BenchError(f"no progress for {STALL_TIMEOUT:.0f} s at {accepted}/{events}")
            time.sleep(0.05)
        end = sample(env, daemon)
        cpu = usage_since(env, daemon, first)
    finally:
        daemon.stop()
    assert first is not None
    counted = events - first_count
    if journal:
        with sqlite3.connect(f"file:{spool}.journal.db?mode=ro", uri=True) as db:
            rows = db.execute("SELECT count(*) FROM journal").fetchone()[0]
        if rows < events:
            raise BenchError(f"the journal holds {rows} of {events} events")
    return Run(journal, (end.daemon_cpu - first.daemon_cpu) / max(counted, 1) * 1e6, counted,
               cpu)


def record(on: list[Run], off: list[Run], *, events: int) -> str:
    """The section of RESULTS.md, also printed."""
    best_on = min(r.cpu_us_per_event for r in on)
    best_off = min(r.cpu_us_per_event for r in off)
    extra = best_on / best_off - 1
    lines = [
        f"Latest run: {utc_date()} — `bench/bench_journal.py --rounds {len(on)}`: {events:,} "
        f"alarms over 1,000 alert keys, 20 ms API latency, `--max_in_flight {IN_FLIGHT}`, one "
        "daemon per run with `-p` and its own spool file (journal on: the default beside it; "
        "off: `--journal off`); rounds interleaved, the order swapped each round; best of the "
        "rounds per side.",
        "",
        "| figure | journal on | `--journal off` | on / off | target | met? |",
        "|---|---:|---:|---:|---|---|",
        f"| daemon CPU µs per delivered event (best) | {best_on:,.0f} | {best_off:,.0f} | "
        f"{extra:+.1%} | ≤ +{TARGET:.0%} | {'yes' if extra <= TARGET else 'NO'} |",
        f"| every round (µs, in run order) | {' / '.join(f'{r.cpu_us_per_event:,.0f}' for r in on)}"
        f" | {' / '.join(f'{r.cpu_us_per_event:,.0f}' for r in off)} | | | |",
        "",
        *(f"- {r}" for r in [*on, *off]),
        "",
        "CPU is the daemon's user + system time, all threads, from the first accepted event to the "
        "last, per event accepted in between; contention is the share of that time in which some "
        "runnable task on the machine waited for a core (PSI).",
        "",
        "Machine: " + "; ".join(f"{key} {value}" for key, value in machine().items()) + ".",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Start the broker and the sandbox, run the rounds, print and record the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="A/B rounds (default 3)")
    parser.add_argument("--events", type=int, default=20_000, help="events per run")
    parser.add_argument("--no-record", action="store_true", help="leave RESULTS.md alone")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="ilagent-bench-journal-"))
    print(f"logs in {workdir}; starting Kafka and the sandbox ...", flush=True)
    broker = sandbox = None
    on: list[Run] = []
    off: list[Run] = []
    ok = False
    try:
        broker = load_broker_module().start()
        sandbox = SandboxProcess(workdir=workdir).start()
        env = Env(broker.bootstrap, sandbox, workdir)
        topic = env.topic("journal")
        produce_all(env.bootstrap, topic, alarms(args.events))
        number = 0
        for round_ in range(max(1, args.rounds)):
            order = (True, False) if round_ % 2 == 0 else (False, True)
            for journal in order:
                number += 1
                result = run(env, topic=topic, events=args.events, journal=journal,
                             number=number)
                (on if journal else off).append(result)
                print(f"  round {round_ + 1}: {result}", flush=True)
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
    block = record(on, off, events=args.events)
    print(f"\n{block}")
    if not args.no_record:
        replace_block(RESULTS_FILE, heading=HEADING, begin=BEGIN, end=END, block=block)
        print(f"\nrecorded in {RESULTS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
