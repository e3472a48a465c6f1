"""What a daemon that serves no HTTP, and the container's health check, take in memory and CPU.

* **Daemon**: ilert's Kafka guide's second command line (no ``-p``: no HTTP server), pacing
  off, until 2,000 of the guide's alarms reached the minimal fake ilert
  (``bench/fake_ilert.py``). Figures: the daemon's peak RSS (``VmHWM``) at that moment, and its
  CPU from its start (imports included) to then.
* **Health check**: ``python -m ilagent.healthcheck PID`` against a daemon with ``-p``, as the
  image's ``HEALTHCHECK`` runs it every 30 s. Figures: each check's CPU (user + system) and peak
  RSS, from ``wait4()``.

With ``--old-src DIR`` (another checkout's ``src``) both are taken for both trees, interleaved,
the order swapped each round; best and worst are reported.

    .venv/bin/python bench/bench_footprint.py [--rounds 3] [--old-src ../old/src] [--no-record]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_cost import FakeIlertProcess, daemon, watch
from bench.common import (
    RESULTS_FILE,
    Process,
    create_topic,
    free_port,
    http,
    ilagent_argv,
    load_broker_module,
    machine,
    produce_all,
    replace_block,
    scratch,
    utc_date,
    wait_until,
)
from bench.kafka_runs import alarm, keyed

HEADING = "## Footprint: a daemon without an HTTP server, and the health check"
BEGIN = "<!-- bench_footprint:begin (written by bench/bench_footprint.py; edits in here are lost) -->"
END = "<!-- bench_footprint:end -->"
EVENTS = 2_000
CHECKS = 5  # health checks per round and tree


@dataclass(frozen=True)
class Figures:
    """One tree's figures of one round."""

    daemon_mib: float
    daemon_cpu_s: float
    check_mib: list[float]
    check_cpu_s: list[float]


def env_of(src: str | None) -> dict[str, str]:
    return {"PYTHONPATH": src} if src else {}


def daemon_run(fake: FakeIlertProcess, workdir: Path, bootstrap: str, topic: str,
               src: str | None) -> tuple[float, float]:
    """Peak RSS (MiB) and CPU seconds of the guide's daemon until every alarm arrived."""
    fake.reset()
    proc = daemon(fake, workdir, bootstrap, topic, src)
    try:
        watch(fake, proc, EVENTS)
        return proc.peak_rss_mb(), proc.cpu_seconds()
    finally:
        proc.stop()


def check_runs(workdir: Path, src: str | None) -> tuple[list[float], list[float]]:
    """Peak RSS (MiB) and CPU seconds of each of ``CHECKS`` health checks of a daemon with -p."""
    port = free_port()
    served = Process(ilagent_argv("daemon", "-p", str(port), "--http_host", "127.0.0.1", "-f",
                                  str(workdir / f"q-{uuid.uuid4().hex[:6]}.db3")),
                     log=workdir / "served.log", env=env_of(src)).start()
    mib, cpu = [], []
    try:
        wait_until(lambda: _health(port), timeout=30, what="the daemon to serve /health")
        for _ in range(CHECKS):
            child = subprocess.Popen(
                [sys.executable, "-m", "ilagent.healthcheck", str(served.pid)],
                stdout=subprocess.DEVNULL, env={**os.environ, **env_of(src)})
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
            if child.returncode != 0:
                raise RuntimeError(f"the health check said unhealthy ({child.returncode})")
            mib.append(usage.ru_maxrss / 1024)
            cpu.append(usage.ru_utime + usage.ru_stime)
    finally:
        served.stop()
    return mib, cpu


def _health(port: int) -> bool:
    try:
        return http("GET", f"http://127.0.0.1:{port}/health", timeout=2)[0] == 204
    except OSError:
        return False


def report(results: dict[str, list[Figures]], rounds: int, old: bool) -> str:
    lines = [
        f"Latest run: {utc_date()} — `bench/bench_footprint.py --rounds {rounds}"
        f"{' --old-src …' if old else ''}`; rounds interleaved, the order swapped each round; "
        "best and worst.",
        "",
        "| figure | tree | best | worst |",
        "|---|---|---:|---:|",
    ]
    rows = (
        (f"daemon without -p: peak RSS (MiB), {EVENTS:,} events delivered", "daemon_mib", ".0f"),
        ("daemon without -p: CPU s from start to the last event", "daemon_cpu_s", ".2f"),
        ("health check: peak RSS (MiB)", "check_mib", ".1f"),
        ("health check: CPU s", "check_cpu_s", ".3f"),
    )
    for name, attr, fmt in rows:
        for tree, runs in results.items():
            values: list[float] = []
            for run in runs:
                value = getattr(run, attr)
                values += value if isinstance(value, list) else [value]
            lines.append(f"| {name} | {tree} | {min(values):{fmt}} | {max(values):{fmt}} |")
    lines += ["", "Machine: " + "; ".join(f"{k} {v}" for k, v in machine().items()) + "."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--old-src", help="another tree's src, measured interleaved")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    trees: list[tuple[str, str | None]] = [("this tree", None)]
    if args.old_src:
        trees.append(("old tree", os.path.abspath(args.old_src)))
    results: dict[str, list[Figures]] = {}
    with scratch("ilagent-bench-footprint-") as workdir, contextlib.ExitStack() as stack:
        broker = load_broker_module().start()
        stack.callback(broker.destroy)
        fake = FakeIlertProcess(workdir).start()
        stack.callback(fake.stop)
        topic = create_topic(broker.bootstrap, f"fp-{uuid.uuid4().hex[:8]}", partitions=1)
        produce_all(broker.bootstrap, topic, ((keyed(i), alarm(i)) for i in range(EVENTS)))
        for number in range(max(1, args.rounds)):
            for tree, src in trees if number % 2 == 0 else trees[::-1]:
                peak, cpu = daemon_run(fake, workdir, broker.bootstrap, topic, src)
                mib, check_cpu = check_runs(workdir, src)
                results.setdefault(tree, []).append(Figures(peak, cpu, mib, check_cpu))
                print(f"  {tree}: daemon {peak:.0f} MiB, {cpu:.2f} s CPU; health checks "
                      f"{max(mib):.1f} MiB, {min(check_cpu):.3f} to {max(check_cpu):.3f} s CPU",
                      flush=True)
    text = report(results, args.rounds, bool(args.old_src))
    print("\n" + text)
    if not args.no_record:
        replace_block(RESULTS_FILE, heading=HEADING, begin=BEGIN, end=END, block=text)
        print(f"\nrecorded in {RESULTS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
