"""What an event costs the daemon (issue 27): CPU per delivered and per filtered message.

Run the way the Rust ilagent 0.9 was measured beside ours: one broker, one partition, pacing
off, and a minimal fast stand-in for ilert (``bench/fake_ilert.py``, answering 202 at once) in
place of the sandbox, which costs about as much CPU as the daemon itself.

* **P1**: 20,000 pre-produced alarms over 1,000 alert keys (ilert's Kafka guide's mapping),
  default ``--max_in_flight``. Figures: delivered events/s (the fake's own clock, first to last
  POST) and the daemon's CPU (user + system, all threads, from ``/proc``) per event delivered
  between the first and the last sighting; every event must arrive, each alert key in order.
* **F**: 200,000 messages of which 1 % pass ``--filter_key type --filter_val ALARM``.
  Figures: consumed messages/s (timed by the first and the last passing message, 199,900
  messages apart, on the fake's clock) and daemon CPU per consumed message; beside it, in the
  same round, a bare confluent-kafka consumer (``consume()`` in batches, auto commit) reading
  the same topic in a fresh group, as the floor, and the broker's CPU per message it reads.
* **F0**: F's topic under a filter that only its first and its last message pass
  (``--filter_key probe --filter_val yes``): the same figures with next to nothing delivered,
  so that F's gap to the bare consumer splits into what reading and filtering cost and what the
  1 % delivered cost.

Beside the daemon's figures: the fake's CPU per answered POST, and what F at 90 % of the bare
consumer's rate would ask of this machine's cores, from the figures of the same run
(:func:`ceiling`).

With ``--old-src DIR`` (another checkout's ``src``) every figure is taken for both trees,
interleaved, the order swapped each round; best and worst of the rounds are reported.
``--profile DIR`` samples one run of each of ``--only`` with this tree with py-spy and prints
where the CPU goes.

    .venv/bin/python bench/bench_cost.py [--rounds 3] [--old-src ../old/src] [--only p1,f,f0]
                                         [--profile DIR] [--no-record]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    RESULTS_FILE,
    Process,
    create_topic,
    free_port,
    http,
    http_json,
    ilagent_argv,
    load_broker_module,
    machine,
    own_cpu_seconds,
    pid_cpu_seconds,
    produce_all,
    replace_block,
    scratch,
    stat_cpu_seconds,
    utc_date,
    wait_until,
)
from bench.kafka_runs import ALERT_KEYS, FILTER, MAPPING, PACING_OFF, BenchError, alarm, keyed

HEADING = "## Cost per event (issue 27): P1 delivery and filtering, minimal fake ilert"
BEGIN = "<!-- bench_cost:begin (written by bench/bench_cost.py; edits in here are lost) -->"
END = "<!-- bench_cost:end -->"
P1_EVENTS = 20_000
F_MESSAGES = 200_000
F_PASS_EVERY = 100
# F0: the same topic under a filter only its first and its last message pass
F0_FILTER = ("--filter_key", "probe", "--filter_val", "yes")
F0_PASSING = (0, F_MESSAGES - 1)
STALL = 30.0


class FakeIlertProcess(Process):
    """``bench/fake_ilert.py`` on 127.0.0.1."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/api"
        script = str(Path(__file__).with_name("fake_ilert.py"))
        super().__init__([sys.executable, script, "--port", str(self.port)],
                         log=workdir / "fake-ilert.log")

    def start(self) -> FakeIlertProcess:
        super().start()
        wait_until(self._answers, timeout=30, what="the fake ilert to listen")
        return self

    def _answers(self) -> bool:
        try:
            return http("GET", f"{self.url}/fake/count", timeout=2)[0] == 200
        except OSError:
            return False

    def count(self) -> dict[str, float]:
        return http_json("GET", f"{self.url}/fake/count")  # type: ignore[no-any-return]

    def bodies(self) -> list[dict[str, Any]]:
        raw = http("GET", f"{self.url}/fake/bodies", timeout=60)[1]
        return [json.loads(line) for line in raw.splitlines() if line]

    def reset(self) -> None:
        http("DELETE", f"{self.url}/fake")


@dataclass(frozen=True)
class Run:
    """One measured run: its rate and its CPU per message; for a daemon's run the fake ilert's
    CPU per answered POST, for the bare consumer's the broker's CPU per message it read."""

    tree: str
    per_second: float
    cpu_us: float
    fake_us: float | None = None
    broker_us: float | None = None

    def __str__(self) -> str:
        text = f"{self.tree}: {self.per_second:,.0f}/s, {self.cpu_us:.1f} µs CPU per message"
        if self.broker_us is not None:
            text += f" (the broker {self.broker_us:.1f})"
        return text


def daemon(fake: FakeIlertProcess, workdir: Path, bootstrap: str, topic: str, src: str | None,
           *flags: str) -> Process:
    env = {"ILERT_API_URL": fake.api_url, "ILERT_BEAT_URL": fake.api_url}
    if src:
        env["PYTHONPATH"] = src
    argv = ilagent_argv("daemon", "--kafka_brokers", bootstrap, "--kafka_group_id",
                        f"cost-{uuid.uuid4().hex[:8]}", "-e", topic, "--kafka_offset_reset",
                        "earliest", *PACING_OFF, *MAPPING, *flags)
    return Process(argv, log=workdir / f"daemon-{uuid.uuid4().hex[:6]}.log", env=env).start()


def watch(fake: FakeIlertProcess, proc: Process, until: int) -> tuple[float, int, float, int]:
    """Poll the fake until ``until`` POSTs arrived: the daemon's CPU and the count at the first
    sighting and at the end."""
    first: tuple[float, int] | None = None
    seen, changed = -1, time.monotonic()
    while True:
        count = int(fake.count()["count"])
        if count and first is None:
            first = (proc.cpu_seconds(), count)
        if count >= until:
            assert first is not None
            return first[0], first[1], proc.cpu_seconds(), count
        if not proc.alive():
            raise BenchError(f"the daemon exited at {count}/{until}:\n{proc.tail()}")
        if count != seen:
            seen, changed = count, time.monotonic()
        elif time.monotonic() - changed > STALL:
            raise BenchError(f"no progress for {STALL:.0f} s at {count}/{until}")
        time.sleep(0.005)


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """Each thread's name and CPU seconds so far (the main thread's id is the pid)."""
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        threads[int(task.name)] = (stat[stat.index("(") + 1 : stat.rindex(")")],
                                   stat_cpu_seconds(stat))
    return threads


def check_order(bodies: list[dict[str, Any]], expected: Sequence[int]) -> None:
    """Every expected ``bench N`` arrived, and each alert key's in produced order."""
    numbers = [int(str(body["summary"]).split()[1]) for body in bodies]
    missing = set(expected) - set(numbers)
    if missing:
        raise BenchError(f"{len(missing)} of {len(expected)} events never arrived")
    last: dict[int, int] = {}
    for number in numbers:
        key = number % ALERT_KEYS
        if last.get(key, -1) > number:
            raise BenchError(f"alert key M{key} reordered")
        last[key] = number


@contextlib.contextmanager
def sampled(proc: Process, profile: Path | None, per: int) -> Iterator[None]:
    """With ``profile``, sample ``proc`` with py-spy meanwhile and print each thread's CPU per
    one of ``per`` (events or messages) at the end."""
    if profile is None:
        yield
        return
    spy = subprocess.Popen(
        [shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")), "record",
         "--pid", str(proc.pid), "--rate", "250", "--format", "raw", "--threads",
         "--output", str(profile), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    threads0 = thread_cpu(proc.pid)
    try:
        yield
        threads1 = thread_cpu(proc.pid)
        used = {t: s - threads0.get(t, (n, 0.0))[1] for t, (n, s) in threads1.items()}
        for tid, seconds in sorted(used.items(), key=lambda item: -item[1])[:8]:
            print(f"  thread {tid} {threads1[tid][0]}: {seconds:.2f} s CPU "
                  f"({seconds / per * 1e6:.1f} µs per unit)")
    finally:
        spy.send_signal(2)
        spy.wait(30)


def p1_run(env: Env, tree: str, src: str | None, *, profile: Path | None = None) -> Run:
    return measured(env, tree, src, env.p1_topic, (), range(P1_EVENTS), profile)


def f_run(env: Env, tree: str, src: str | None, *, profile: Path | None = None) -> Run:
    return measured(env, tree, src, env.f_topic, FILTER, range(0, F_MESSAGES, F_PASS_EVERY),
                    profile)


def f0_run(env: Env, tree: str, src: str | None, *, profile: Path | None = None) -> Run:
    return measured(env, tree, src, env.f_topic, F0_FILTER, F0_PASSING, profile)


def measured(env: Env, tree: str, src: str | None, topic: str, flags: Sequence[str],
             passing: Sequence[int], profile: Path | None) -> Run:
    """The daemon on ``topic`` under ``flags``, until the messages numbered ``passing`` (every
    one for P1) reached the fake, each alert key in order: messages/s between the first and
    the last of them, and CPU per message consumed from the first sighting to the end."""
    env.fake.reset()
    proc = daemon(env.fake, env.workdir, env.bootstrap, topic, src, *flags)
    try:
        with sampled(proc, profile, passing[-1] - passing[0] + 1):
            cpu0, count0, cpu1, count1 = watch(env.fake, proc, len(passing))
    finally:
        proc.stop()
    stats = env.fake.count()
    check_order(env.fake.bodies(), passing)
    rate = (passing[-1] - passing[0]) / max(stats["last"] - stats["first"], 1e-6)
    consumed = passing[min(count1, len(passing)) - 1] - passing[count0 - 1]
    return Run(tree, rate, (cpu1 - cpu0) / max(consumed, 1) * 1e6,
               fake_us=stats["cpu"] / max(stats["count"] - 1, 1) * 1e6)


def bare_run(env: Env) -> Run:
    """A bare confluent-kafka consumer of the filter topic, in a process of its own."""
    out = subprocess.run(
        [sys.executable, __file__, "--bare", env.bootstrap, env.f_topic, str(F_MESSAGES),
         str(env.broker_pid)], capture_output=True, text=True, timeout=300, check=True)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    return Run("bare confluent-kafka consumer", figures["per_second"], figures["cpu_us"],
               broker_us=figures["broker_us"])


def bare(bootstrap: str, topic: str, count: int, broker_pid: int) -> None:
    """Consume ``count`` messages as a plain application would; print rate and CPU per message,
    its own and the broker's (process ``broker_pid``) over the same stretch."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bare-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    seen, start, cpu0, broker0 = 0, 0.0, 0.0, 0.0
    while seen < count:
        messages = consumer.consume(num_messages=500, timeout=1.0)
        if messages and not seen:
            start, cpu0, broker0 = time.monotonic(), own_cpu_seconds(), pid_cpu_seconds(broker_pid)
        seen += sum(1 for message in messages if message.error() is None and message.value())
    elapsed, cpu = time.monotonic() - start, own_cpu_seconds() - cpu0
    broker = pid_cpu_seconds(broker_pid) - broker0
    consumer.close()
    print(json.dumps({"per_second": seen / elapsed, "cpu_us": cpu / seen * 1e6,
                      "broker_us": broker / seen * 1e6}))


@dataclass
class Env:
    bootstrap: str
    broker_pid: int
    fake: FakeIlertProcess
    workdir: Path
    p1_topic: str = ""
    f_topic: str = ""


def profile_summary(raw: Path, *, top: int = 25) -> str:
    """Where the sampled CPU went: the hottest functions by own samples and by inclusive ones."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [frame.split(" (")[0] + " (" + frame.split(" (")[-1].split(":")[0].rsplit(
            "/", 1)[-1] + ")" if " (" in frame else frame for frame in stack.split(";")[1:]]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples (all threads)", "", "own:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    lines += ["", "inclusive:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


def spread(runs: Sequence[Run], figure: str) -> tuple[float, float]:
    values = [getattr(run, figure) for run in runs]
    return min(values), max(values)


def report(results: dict[str, dict[str, list[Run]]], bares: list[Run], rounds: int,
           old: bool) -> str:
    lines = [
        f"Latest run: {utc_date()} — `bench/bench_cost.py --rounds {rounds}"
        f"{' --old-src …' if old else ''}`; rounds interleaved, the order swapped each round; "
        "best and worst of the rounds.",
        "",
        "| figure | tree | best | worst |",
        "|---|---|---:|---:|",
    ]
    names = {"p1": ("P1 delivered events/s, 20,000 events, 0 ms", "P1 CPU µs per delivered event"),
             "f": ("F consumed messages/s, 200,000, 1 % pass", "F CPU µs per consumed message"),
             "f0": ("F0 consumed messages/s, the same, 2 pass",
                    "F0 CPU µs per consumed message")}
    for bench, by_tree in results.items():
        rate_name, cpu_name = names[bench]
        for tree, runs in by_tree.items():
            low, high = spread(runs, "per_second")
            lines.append(f"| {rate_name} | {tree} | {high:,.0f} | {low:,.0f} |")
        for tree, runs in by_tree.items():
            low, high = spread(runs, "cpu_us")
            lines.append(f"| {cpu_name} | {tree} | {low:.1f} | {high:.1f} |")
    for tree, runs in results.get("p1", {}).items():
        low, high = spread(runs, "fake_us")
        lines.append(f"| P1 fake ilert's CPU µs per answered POST | {tree} | {low:.1f} | "
                     f"{high:.1f} |")
    if bares:
        low, high = spread(bares, "per_second")
        lines.append(f"| F consumed messages/s | bare confluent-kafka consumer | {high:,.0f} | "
                     f"{low:,.0f} |")
        low, high = spread(bares, "cpu_us")
        lines.append(f"| F CPU µs per consumed message | bare confluent-kafka consumer | "
                     f"{low:.1f} | {high:.1f} |")
        low, high = spread(bares, "broker_us")
        lines.append(f"| the broker's CPU µs per message read | bare confluent-kafka consumer | "
                     f"{low:.1f} | {high:.1f} |")
    lines += ["", "Every run, in order:", ""]
    lines += [f"- {bench}: {run}" for bench, by_tree in results.items()
              for runs in zip(*by_tree.values(), strict=False) for run in runs]
    lines += [f"- f: {run}" for run in bares]
    lines += ceiling(results.get("p1", {}).get("this tree", []), bares)
    lines += ["", "Machine: " + "; ".join(f"{k} {v}" for k, v in machine().items()) + "."]
    return "\n".join(lines)


def ceiling(p1: Sequence[Run], bares: Sequence[Run], *, share: float = 0.9) -> list[str]:
    """What F at ``share`` of the bare consumer's best rate asks of this machine's cores, each
    figure taken at its best and filtering taken as free: the CPU left for each passing event
    once its stretch of messages is read at the bare consumer's cost (its process and the
    broker), beside what delivering one cost in P1 (the daemon and the fake)."""
    if not p1 or not bares:
        return []
    cores = os.cpu_count() or 1
    messages = F_MESSAGES - F_PASS_EVERY  # between F's first and last passing message
    events = F_MESSAGES // F_PASS_EVERY - 1  # delivered after the first
    window_ms = messages / (share * max(run.per_second for run in bares)) * 1e3
    reading_ms = messages * (min(run.cpu_us for run in bares)
                             + min(run.broker_us or 0.0 for run in bares)) / 1e3
    daemon_us = min(run.cpu_us for run in p1)
    fake_us = min(run.fake_us or 0.0 for run in p1)
    room_us = (cores * window_ms - reading_ms) / events * 1e3
    return [
        "", f"F at {share * 100:.0f} % of the bare consumer's best rate, from the figures above "
        f"at their best, with filtering taken as free and every core busy: {messages:,} "
        f"messages in {window_ms:.0f} ms, {cores * window_ms:.0f} ms of CPU on {cores} cores. "
        f"Reading them at the bare consumer's cost (its process and the broker) takes "
        f"{reading_ms:.0f} ms of that, which leaves {room_us:.0f} µs of CPU for each of the "
        f"{events:,} events delivered meanwhile, the daemon's and ilert's together; in P1 one "
        f"cost the daemon {daemon_us:.1f} µs and the fake {fake_us:.1f} µs.",
    ]


RUNS = (("p1", p1_run), ("f", f_run), ("f0", f0_run))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--old-src", help="another tree's src, measured interleaved")
    parser.add_argument("--only", default="p1,f,f0")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="also sample one run of each of --only, this tree, with py-spy")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--bare", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare:
        bare(args.bare[0], args.bare[1], int(args.bare[2]), int(args.bare[3]))
        return 0
    only = args.only.split(",")
    trees: list[tuple[str, str | None]] = [("this tree", None)]
    if args.old_src:
        trees.append(("old tree", os.path.abspath(args.old_src)))
    results: dict[str, dict[str, list[Run]]] = {}
    bares: list[Run] = []
    with scratch("ilagent-bench-cost-") as workdir, contextlib.ExitStack() as stack:
        broker = load_broker_module().start()
        stack.callback(broker.destroy)
        fake = FakeIlertProcess(workdir).start()
        stack.callback(fake.stop)
        env = Env(broker.bootstrap, broker.pid(), fake, workdir)
        if "p1" in only:
            env.p1_topic = create_topic(env.bootstrap, f"p1-{uuid.uuid4().hex[:8]}", partitions=1)
            produce_all(env.bootstrap, env.p1_topic,
                        ((keyed(i), alarm(i)) for i in range(P1_EVENTS)))
        if {"f", "f0"} & set(only):
            env.f_topic = create_topic(env.bootstrap, f"f-{uuid.uuid4().hex[:8]}", partitions=1)
            produce_all(env.bootstrap, env.f_topic, (
                (keyed(i), alarm(i, kind="ALARM" if i % F_PASS_EVERY == 0 else "TELEMETRY",
                                 extra={"probe": "yes"} if i in F0_PASSING else None))
                for i in range(F_MESSAGES)))
        for number in range(max(1, args.rounds)):
            order = trees if number % 2 == 0 else trees[::-1]
            for bench, run in RUNS:
                if bench not in only:
                    continue
                for tree, src in order:
                    result = run(env, tree, src)
                    results.setdefault(bench, {}).setdefault(tree, []).append(result)
                    print(f"  {bench} {result}", flush=True)
            if {"f", "f0"} & set(only):
                bares.append(bare_run(env))
                print(f"  f {bares[-1]}", flush=True)
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            for bench, run in RUNS:
                if bench in only:
                    raw = args.profile / f"{bench}.txt"
                    run(env, "this tree (profiled)", None, profile=raw)
                    print(f"{bench}:\n{profile_summary(raw)}")
    text = report(results, bares, args.rounds, bool(args.old_src))
    print("\n" + text)
    if not args.no_record and not args.profile and set(only) >= {"p1", "f"}:
        replace_block(RESULTS_FILE, heading=HEADING, begin=BEGIN, end=END, block=text)
        print(f"\nrecorded in {RESULTS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
