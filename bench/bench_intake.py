"""Benchmark of the HTTP intake (issue 4): accepted events/s and answer times, many clients.

A sandbox process stands in for ilert; per scenario a server process is started and
``--requests`` events are posted over ``--connections`` keep-alive connections, every answer
timed (after a warm-up of 500):

* ``ceiling``  — not ilagent: a minimal aiohttp app that reads the body and answers 202, the
  most this machine and client can do at all;
* ``paced``    — ``ilagent daemon -p`` with its defaults (ilert's 700/min pacing), so nearly
  every event stays queued: the intake on its own;
* ``kafka``    — as ``paced``, on a Kafka spool (``--spool kafka:TOPIC``): each
  202 waits for the broker's acknowledgement (``acks=all``); a broker is started for it, as
  bench_kafka.py does;
* ``draining`` — pacing off: the daemon delivers to the sandbox while it accepts, so the
  client, the daemon and the sandbox share the cores.

Each runs with two clients: ``aiohttp`` (a ClientSession) and ``raw`` (asyncio streams writing
pre-built HTTP/1.1 requests), because on a small machine the aiohttp client itself uses more
CPU than the server it measures. Each figure is the best of ``--repeat`` runs (other work on
the machine only ever makes a run slower); the CPU pressure column is the share of the run
during which some task waited for a core (Linux PSI), a measure of that contention.

    .venv/bin/python bench/bench_intake.py [--requests 20000] [--connections 64] [--repeat 3]
        [--scenarios ceiling,paced,kafka,draining] [--no-record]

Records the table, the machine and the date in the "HTTP intake (issue 4)" section of
bench/RESULTS.md. Targets: ≥ 2,000 accepted/s with p99 ≤ 50 ms on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    RESULTS_FILE,
    DaemonProcess,
    Process,
    SandboxProcess,
    cpu_pressure_seconds,
    create_topic,
    free_port,
    http,
    load_broker_module,
    machine,
    percentile,
    replace_block,
    utc_date,
    wait_until,
)

HEADING = "## HTTP intake (issue 4)"
BEGIN = "<!-- bench_intake:begin (written by bench/bench_intake.py; edits in here are lost) -->"
END = "<!-- bench_intake:end -->"
KEY = "il1apibenchintake0000001"
WARM_UP = 500
SCENARIOS = ("ceiling", "paced", "kafka", "draining")
SPOOL_PARTITIONS = 1  # one integration key posts everything: its records share a partition
Timings = tuple[list[float], int, float]  # answer times of the 202s, other answers, seconds
Driver = Callable[[str, int, int, float, int], Awaitable[Timings]]


def body(n: int) -> bytes:
    """Event ``n``: 1,000 alert keys of one integration key, a unique summary."""
    event = {
        "integrationKey": KEY,
        "eventType": "ALERT",
        "alertKey": f"a{n % 1000}",
        "summary": f"bench event {n}",
        "customDetails": {"n": n, "host": "bench-1"},
    }
    return json.dumps(event).encode()


async def drive_aiohttp(
    url: str, requests: int, connections: int, deadline: float, offset: int
) -> Timings:
    """Post events through one aiohttp ClientSession with ``connections`` connections."""
    latencies: list[float] = []
    failures = 0
    numbers = iter(range(offset, offset + requests))
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as s:

        async def client() -> None:
            nonlocal failures
            for n in numbers:
                if time.monotonic() > deadline:
                    return
                data = body(n)
                started = time.perf_counter()
                async with s.post(url, data=data, headers=headers) as response:
                    await response.read()
                if response.status == 202:
                    latencies.append(time.perf_counter() - started)
                else:
                    failures += 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(connections)))
        return latencies, failures, time.perf_counter() - started


async def drive_raw(
    url: str, requests: int, connections: int, deadline: float, offset: int
) -> Timings:
    """Post events as raw keep-alive HTTP/1.1, one request at a time per connection."""
    latencies: list[float] = []
    failures = 0
    numbers = iter(range(offset, offset + requests))
    authority, path = url.removeprefix("http://").split("/", 1)
    host, port = authority.split(":")

    async def client() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for n in numbers:
                if time.monotonic() > deadline:
                    return
                data = body(n)
                head = (
                    f"POST /{path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: "
                    f"application/json\r\nContent-Length: {len(data)}\r\n\r\n"
                ).encode()
                started = time.perf_counter()
                writer.write(head + data)
                answer = await reader.readuntil(b"\r\n\r\n")
                at = answer.lower().index(b"content-length:") + 15
                await reader.readexactly(int(answer[at : answer.index(b"\r\n", at)]))
                if answer[9:12] == b"202":
                    latencies.append(time.perf_counter() - started)
                else:
                    failures += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    return latencies, failures, time.perf_counter() - started


DRIVERS: dict[str, Driver] = {"raw": drive_raw, "aiohttp": drive_aiohttp}


@dataclass
class Run:
    """One measured run."""

    client: str
    scenario: str
    accepted: int
    failed: int
    seconds: float
    p50_ms: float
    p99_ms: float
    pressure: float | None  # share of the run some task waited for a core
    depth: float | None  # queue depth when the posting ended

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    def cells(self) -> list[str]:
        pressure = "-" if self.pressure is None else f"{self.pressure:.0%}"
        depth = "-" if self.depth is None else f"{self.depth:.0f}"
        return [self.client, self.scenario, f"{self.accepted}", f"{self.failed}",
                f"{self.rate:,.0f}", f"{self.p50_ms:.1f}", f"{self.p99_ms:.1f}", pressure, depth]


def start_server(
    scenario: str, *, sandbox: SandboxProcess, workdir: Path, name: str, bootstrap: str | None
) -> tuple[Process, str, DaemonProcess | None]:
    """The scenario's server process, its intake URL and (for ilagent) the daemon handle."""
    if scenario == "ceiling":
        port = free_port()
        server = Process(
            [sys.executable, __file__, "--serve-ceiling", str(port)], log=workdir / f"{name}.log"
        ).start()
        url = f"http://127.0.0.1:{port}"
        daemon = None
    else:
        pacing = ["--rate_limit_per_key", "0", "--rate_limit_total", "0"]
        spool = ["-f", str(workdir / f"{name}.db3")]
        if scenario == "kafka":
            assert bootstrap is not None, "the kafka scenario needs a broker"
            topic = create_topic(bootstrap, f"bench-spool-{name}", partitions=SPOOL_PARTITIONS)
            spool = ["--spool", f"kafka:{topic}", "--kafka_brokers", bootstrap,
                     "--kafka_group_id", f"bench-{name}", "--kafka_offset_reset", "earliest"]
        daemon = DaemonProcess(
            # one client address posts everything: its rate limit would be all we measured
            [*spool, "--http_rate_limit", "0", *(pacing if scenario == "draining" else [])],
            sandbox=sandbox,
            log=workdir / f"{name}.log",
        )
        server = daemon.start()
        url = f"http://127.0.0.1:{daemon.http_port}"

    def healthy() -> bool:
        if not server.alive():
            raise RuntimeError(f"{name} exited:\n{server.tail()}")
        try:
            return http("GET", f"{url}/health", timeout=2)[0] == 204
        except OSError:
            return False

    wait_until(healthy, timeout=30, what=f"{name} to serve")
    return server, f"{url}/api/events", daemon


def measure(
    client: str,
    scenario: str,
    *,
    args: argparse.Namespace,
    sandbox: SandboxProcess,
    workdir: Path,
    attempt: int,
    bootstrap: str | None,
) -> Run:
    """Start the scenario's server, warm it up, post the events, stop it."""
    name = f"{scenario}-{client}-{attempt}"
    server, url, daemon = start_server(scenario, sandbox=sandbox, workdir=workdir, name=name,
                                       bootstrap=bootstrap)
    drive = DRIVERS[client]
    try:
        asyncio.run(drive(url, WARM_UP, args.connections, time.monotonic() + 30, 10**9))
        pressure_before = cpu_pressure_seconds()
        latencies, failed, seconds = asyncio.run(
            drive(url, args.requests, args.connections, time.monotonic() + args.max_seconds, 0)
        )
        pressure_after = cpu_pressure_seconds()
        depth = None if daemon is None else queue_depth(daemon, kafka=scenario == "kafka")
    finally:
        server.stop()
    pressure = None
    if pressure_before is not None and pressure_after is not None and seconds:
        pressure = (pressure_after - pressure_before) / seconds
    return Run(
        client,
        scenario,
        len(latencies),
        failed,
        seconds,
        percentile(latencies, 0.5) * 1000,
        percentile(latencies, 0.99) * 1000,
        pressure,
        depth,
    )


def queue_depth(daemon: DaemonProcess, *, kafka: bool) -> float | None:
    """What waits once the posting ended: the queue gauge, or the spool topic's lag once the
    group reports it (after its first commit; None if not within 20 s)."""
    time.sleep(1.5)  # the queue gauges refresh every second
    if not kafka:
        return daemon.metrics()["ilagent_queue_depth"]

    def lags() -> list[float]:
        found = [v for n, v in daemon.metrics().items() if n.startswith("ilagent_kafka_consumer_lag")]
        return found

    try:
        return sum(wait_until(lags, timeout=20, interval=0.5, what="the spool topic's lag"))
    except TimeoutError:
        return None


def serve_ceiling(port: int) -> None:
    """The minimal server of the ``ceiling`` row: read the body, answer 202."""

    async def event(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"id": "1", "status": "queued"}, status=202)

    async def health(_: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/api/events", event)
    app.router.add_get("/health", health)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def table(runs: Sequence[Run]) -> str:
    header = ["client", "scenario", "accepted", "other answers", "accepted/s", "p50 ms",
              "p99 ms", "CPU pressure", "queue depth after"]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    lines += ["| " + " | ".join(run.cells()) + " |" for run in runs]
    return "\n".join(lines)


def record(best: Sequence[Run], every: Sequence[Run], args: argparse.Namespace) -> None:
    """Write the tables, the machine and the date into our section of RESULTS.md."""
    lines = [
        f"Latest run: {utc_date()} — `.venv/bin/python bench/bench_intake.py --requests "
        f"{args.requests} --connections {args.connections} --repeat {args.repeat}"
        f"{'' if args.scenarios == ','.join(SCENARIOS) else ' --scenarios ' + args.scenarios}`: "
        f"{args.requests:,} POSTs over {args.connections} keep-alive connections after "
        f"{WARM_UP} warm-up, best of {args.repeat} runs (by accepted/s):",
        "",
        table(best),
        "",
        "Every run:",
        "",
        table(every),
        "",
        "Machine: " + "; ".join(f"{key} {value}" for key, value in machine().items()) + ".",
    ]
    replace_block(RESULTS_FILE, heading=HEADING, begin=BEGIN, end=END, block="\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    """Run every scenario with every client ``--repeat`` times, print and record the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best counts)")
    parser.add_argument(
        "--max_seconds",
        type=float,
        default=60.0,
        help="stop posting after this long (default %(default)s)",
    )
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="which, comma-separated (default %(default)s; kafka starts a "
                             "broker)")
    parser.add_argument("--no-record", action="store_true", help="leave RESULTS.md alone")
    parser.add_argument("--serve-ceiling", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_ceiling:
        serve_ceiling(args.serve_ceiling)
        return 0
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown or not scenarios:
        parser.error(f"--scenarios: {', '.join(unknown) or 'none'} (known: {', '.join(SCENARIOS)})")
    every: list[Run] = []
    broker = None
    with tempfile.TemporaryDirectory(prefix="ilagent-bench-intake-") as tmp:
        workdir = Path(tmp)
        sandbox = SandboxProcess(workdir=workdir).start()
        try:
            if "kafka" in scenarios:
                broker = load_broker_module().start()
            for attempt in range(max(1, args.repeat)):
                for client in DRIVERS:
                    for scenario in scenarios:
                        sandbox.reset()
                        run = measure(
                            client,
                            scenario,
                            args=args,
                            sandbox=sandbox,
                            workdir=workdir,
                            attempt=attempt,
                            bootstrap=broker.bootstrap if broker is not None else None,
                        )
                        every.append(run)
                        print("| " + " | ".join(run.cells()) + " |", flush=True)
        finally:
            sandbox.stop()
            if broker is not None:
                broker.destroy()
    best = [
        max((r for r in every if (r.client, r.scenario) == (c, s)), key=lambda r: r.rate)
        for c in DRIVERS
        for s in scenarios
    ]
    print(f"\nHTTP intake (issue 4), best of {args.repeat}:\n\n{table(best)}")
    if not args.no_record:
        record(best, every, args)
        print(f"\nrecorded in {RESULTS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
