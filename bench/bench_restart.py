"""What a crash costs (issue 19): events sent twice after SIGKILLs, resolved alerts opened again.

Two scenarios on the real broker and the sandbox, each repeated, for this tree and — with
``--old-src DIR`` (a checkout's ``src``) — for another tree side by side, A/B interleaved:

* ``kill``: 5,000 events over 100 alerts on 4 partitions, ilert answering in 5 ms, pacing off,
  default ``--max_in_flight``; the daemon is SIGKILLed 3 times while it delivers (when 300 to 1,200
  more events were accepted, seeded), then runs to the end. Figure: events ilert received twice.
* ``held``: one key answered 429 holds its partition's position while 40 other alerts open and
  resolve; one SIGKILL, a restart. Figure: resolved alerts opened again.

Plus the offset tracker's memory for 1,000,000 finished offsets behind one stuck one.

    .venv/bin/python bench/bench_restart.py [--repeat 5] [--old-src ../old/src]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    RESULTS_FILE,
    Process,
    SandboxProcess,
    create_topic,
    ilagent_argv,
    load_broker_module,
    machine,
    produce_all,
    replace_block,
    utc_date,
    wait_until,
)

HEADING = "## After trouble: what a crash costs (issue 19)"
BEGIN, END = "<!-- bench_restart:begin", "<!-- bench_restart:end -->"
FAST = ["--rate_limit_per_key", "0", "--rate_limit_total", "0", "--retry_initial_delay", "0.2",
        "--retry_max_delay", "1", "--rate_limit_delay", "1"]


def daemon(bootstrap: str, group: str, topic: str, sandbox: SandboxProcess, workdir: Path,
           src: str | None) -> Process:
    env = {"ILERT_API_URL": sandbox.api_url, "ILERT_BEAT_URL": sandbox.api_url}
    if src:
        env["PYTHONPATH"] = src
    argv = ilagent_argv("daemon", "--kafka_brokers", bootstrap, "--kafka_group_id", group,
                        "--kafka_offset_reset", "earliest", "-e", topic, *FAST)
    return Process(argv, log=workdir / f"daemon-{uuid.uuid4().hex[:6]}.log", env=env).start()


def kill_run(bootstrap: str, sandbox: SandboxProcess, workdir: Path, src: str | None,
             seed: int) -> int:
    """Events sent twice after 3 SIGKILLs of 5,000 events over 100 alerts."""
    sandbox.reset()
    sandbox.fault(latency_ms=5)
    topic = create_topic(bootstrap, f"kill-{uuid.uuid4().hex[:8]}", partitions=4)
    key = f"il1api{uuid.uuid4().hex[:8]}"
    events = [{"integrationKey": key, "eventType": "ALERT", "alertKey": f"a{a}",
               "summary": f"a{a}#{n}"} for n in range(50) for a in range(100)]
    produce_all(bootstrap, topic, ((e["alertKey"].encode(), json.dumps(e).encode())
                                   for e in events))
    group, rng = f"g-{uuid.uuid4().hex[:8]}", random.Random(seed)
    process = daemon(bootstrap, group, topic, sandbox, workdir, src)
    for _ in range(3):
        target = sandbox.accepted() + rng.randint(300, 1200)
        wait_until(lambda t=target: sandbox.accepted() >= t, timeout=120, interval=0.02,
                   what="deliveries before a kill")
        assert process.proc is not None
        process.proc.kill()
        process.proc.wait()
        process = daemon(bootstrap, group, topic, sandbox, workdir, src)
    wait_until(lambda: len({e["body"]["summary"] for e in sandbox.events()}) == 5000,
               timeout=300, interval=0.5, what="all 5,000 events")
    time.sleep(1.0)  # a bench, not a test: let the last resends land before counting
    process.stop()
    return sandbox.accepted() - 5000


def held_run(bootstrap: str, sandbox: SandboxProcess, workdir: Path, src: str | None) -> int:
    """Resolved alerts opened again after one SIGKILL while a 429 holds the position."""
    sandbox.reset()
    limited, key = f"il1apilim{uuid.uuid4().hex[:6]}", f"il1api{uuid.uuid4().hex[:6]}"
    sandbox.fault(status=429, integration_key=limited)
    topic = create_topic(bootstrap, f"held-{uuid.uuid4().hex[:8]}", partitions=1)
    story = [{"integrationKey": limited, "eventType": "ALERT", "alertKey": "held",
              "summary": "x"}]
    story += [{"integrationKey": key, "eventType": kind, "alertKey": f"a{n}",
               "summary": f"a{n}"} for n in range(40) for kind in ("ALERT", "RESOLVE")]
    produce_all(bootstrap, topic, ((None, json.dumps(e).encode()) for e in story))
    group = f"g-{uuid.uuid4().hex[:8]}"
    process = daemon(bootstrap, group, topic, sandbox, workdir, src)
    wait_until(lambda: sandbox.accepted() >= 80, timeout=120, what="the 40 alerts")
    time.sleep(1.0)  # both trees commit within a second
    assert process.proc is not None
    process.proc.kill()
    process.proc.wait()
    process = daemon(bootstrap, group, topic, sandbox, workdir, src)
    time.sleep(10.0)  # the restarted daemon rejoins (session timeout) and replays
    process.stop()
    resolved: set[str] = set()
    reopened = 0
    for event in sandbox.events():
        body = event["body"]
        if body["eventType"] == "RESOLVE":
            resolved.add(body["alertKey"])
        elif body["alertKey"] in resolved:
            reopened += 1
    return reopened


def tracker_bytes() -> int:
    """Memory the offset tracker holds for 1,000,000 finished offsets behind a stuck one."""
    from ilagent.offsets import OffsetTracker

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracker = OffsetTracker()
        tracker.add(0)
        for offset in range(1, 1_000_001):
            tracker.add(offset)
            tracker.finish(offset)
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--old-src", help="another tree's src/ to measure side by side")
    args = parser.parse_args(argv)
    trees = [("this tree", None)] + ([("old tree", args.old_src)] if args.old_src else [])
    broker = load_broker_module()
    kills: dict[str, list[int]] = {name: [] for name, _ in trees}
    held: dict[str, list[int]] = {name: [] for name, _ in trees}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        running = broker.start(workdir / "kafka")
        sandbox = SandboxProcess(workdir=workdir).start()
        try:
            for run in range(args.repeat):
                for name, src in trees:  # A/B interleaved
                    kills[name].append(kill_run(running.bootstrap, sandbox, workdir, src, run))
                    held[name].append(held_run(running.bootstrap, sandbox, workdir, src))
                    print(f"run {run} {name}: sent twice {kills[name][-1]}, "
                          f"reopened {held[name][-1]}", flush=True)
        finally:
            sandbox.stop()
            running.destroy()
    memory = tracker_bytes()
    lines = [f"Latest run: {utc_date()} — `.venv/bin/python bench/bench_restart.py --repeat "
             f"{args.repeat}{' --old-src …' if args.old_src else ''}`", "",
             "| tree | events sent twice after 3 SIGKILLs (each run) | median | "
             "resolved alerts opened again after a SIGKILL (of 40) |",
             "|---|---|---:|---|"]
    for name, _ in trees:
        lines.append(f"| {name} | {', '.join(map(str, kills[name]))} | "
                     f"{statistics.median(kills[name]):.0f} | "
                     f"{', '.join(map(str, held[name]))} |")
    lines += ["", f"Offset tracker, 1,000,000 finished offsets behind one stuck: "
              f"{memory:,} bytes.", "",
              "Machine: " + "; ".join(f"{k} {v}" for k, v in machine().items()) + "."]
    block = "\n".join(lines)
    print(block)
    replace_block(RESULTS_FILE, heading=HEADING, begin=BEGIN + " (written by "
                  "bench/bench_restart.py; edits in here are lost) -->", end=END, block=block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
