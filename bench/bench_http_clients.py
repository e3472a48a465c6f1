"""Which HTTP client for ilert (issue 27, item 2): CPU per request, and a clean exit.

Against the minimal fake ilert (``bench/fake_ilert.py``), each client available in this Python
posts 20,000 small event bodies with 64 in flight (after 200 to warm up) and reports
requests/s and the CPU its process used per request (all threads: a Rust client works on a
runtime thread of its own). Then each runs 100 short processes that send one request (half to
the fake, half to a closed port, as after an outage) and exit, on the quiet machine and again
with every core busy, and counts the exits that were not clean: a daemon that aborts at
shutdown is a deploy that looks like a crash.

``ilagent.http1`` is ilert's client in ilagent (a lean HTTP/1.1 pool over httptools' parser);
aiohttp is what it was before, and what the local fallback's webhook still uses; pyreqwest
(bindings over Rust's reqwest) is measured when it is installed (``pip install pyreqwest~=0.15``;
not a dependency of ilagent), and so are aiosonic, rnet and curl_cffi, other maintained
asyncio clients (``pip install aiosonic rnet curl_cffi``).

    .venv/bin/python bench/bench_http_clients.py [--requests 20000] [--exits 100] [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_cost import FakeIlertProcess
from bench.common import RESULTS_FILE, machine, own_cpu_seconds, replace_block, utc_date

HEADING = "## The HTTP client (issue 27, item 2): CPU per request and clean exits"
BEGIN = "<!-- bench_http_clients:begin (written by bench/bench_http_clients.py; edits in here are lost) -->"
END = "<!-- bench_http_clients:end -->"

BODY = (b'{"integrationKey":"il1apibenchkafka0000000001","eventType":"ALERT","alertKey":"M1",'
        b'"summary":"bench 1"}')
IN_FLIGHT = 64


async def _aiohttp(url: str, count: int) -> int:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100),
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:
        async def one() -> int:
            async with session.request("POST", url, data=BODY, allow_redirects=False,
                                       headers={"Content-Type": "application/json"}) as response:
                return response.status

        return await _drive(one, count)


async def _http1(url: str, count: int) -> int:
    import ssl

    from ilagent.http1 import Pool

    client = Pool(tls=ssl.create_default_context(), timeout=30, limit=100)
    try:
        async def one() -> int:
            answer = await client.request("POST", url, body=BODY,
                                          headers={"Content-Type": "application/json"})
            return answer.status

        return await _drive(one, count)
    finally:
        await client.close()


async def _pyreqwest(url: str, count: int) -> int:
    from datetime import timedelta

    from pyreqwest.client import ClientBuilder

    async with ClientBuilder().max_connections(100).timeout(timedelta(seconds=30)) \
            .follow_redirects(False).build() as client:
        async def one() -> int:
            request = client.request("POST", url).body_bytes(BODY) \
                .header("Content-Type", "application/json")
            return (await request.build().send()).status

        return await _drive(one, count)


async def _aiosonic(url: str, count: int) -> int:
    import aiosonic

    client = aiosonic.HTTPClient()
    try:
        async def one() -> int:
            response = await client.post(url, data=BODY,
                                          headers={"Content-Type": "application/json"})
            await response.content()
            return int(response.status_code)

        return await _drive(one, count)
    finally:
        await client.aclose()


async def _rnet(url: str, count: int) -> int:
    import rnet

    client = rnet.Client()

    async def one() -> int:
        response = await client.post(url, body=BODY, headers={"Content-Type": "application/json"})
        await response.bytes()
        return int(str(response.status)[:3])

    return await _drive(one, count)


async def _curl_cffi(url: str, count: int) -> int:
    from curl_cffi.requests import AsyncSession

    async with AsyncSession(max_clients=100) as session:
        async def one() -> int:
            response = await session.post(url, data=BODY, allow_redirects=False,
                                          headers={"Content-Type": "application/json"})
            return int(response.status_code)

        return await _drive(one, count)


async def _drive(one: object, count: int) -> int:
    """``count`` calls of ``one`` with ``IN_FLIGHT`` at a time; the number that failed."""
    slots = asyncio.Semaphore(IN_FLIGHT)
    failed = 0

    async def limited() -> None:
        nonlocal failed
        async with slots:
            try:
                await one()  # type: ignore[operator]
            except Exception:
                failed += 1

    await asyncio.gather(*(limited() for _ in range(count)))
    return failed


CLIENTS = {"aiohttp": _aiohttp, "ilagent.http1": _http1, "pyreqwest": _pyreqwest,
           "aiosonic": _aiosonic, "rnet": _rnet, "curl_cffi": _curl_cffi}
RECORDED_WITH = ("aiohttp", "ilagent.http1", "pyreqwest")  # the others when installed


def measure(client: str, url: str, count: int) -> None:
    """In this process: the rate and CPU per request of ``client``, printed as JSON."""
    import uvloop

    run = CLIENTS[client]
    uvloop.run(run(url, 200))
    cpu, started = own_cpu_seconds(), time.monotonic()
    failed = uvloop.run(run(url, count))
    elapsed, cpu = time.monotonic() - started, own_cpu_seconds() - cpu
    print(json.dumps({"per_second": count / elapsed, "cpu_us": cpu / count * 1e6,
                      "failed": failed}))


def exits(client: str, url: str, count: int, *, loaded: bool) -> list[int]:
    """The exit codes other than 0 of ``count`` one-request processes of ``client``; with
    ``loaded``, one busy loop per core runs meanwhile (stopped after)."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(os.cpu_count() or 1)] if loaded else []
    try:
        codes = []
        for number in range(count):
            target = url if number % 2 == 0 else "http://127.0.0.1:9/api/events"
            codes.append(subprocess.run([sys.executable, __file__, "--measure", client, target,
                                         "exit"], capture_output=True, timeout=60).returncode)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    return [code for code in codes if code != 0]


def _said(codes: list[int], count: int) -> str:
    exits = f" (exit {', '.join(map(str, sorted(set(codes))))})" if codes else ""
    return f"{len(codes)} of {count}{exits}"


def available() -> list[str]:
    return [name for name in CLIENTS if importlib.util.find_spec(name.partition(".")[0])]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--exits", type=int, default=100)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        client, url, count = args.measure
        if count == "exit":
            asyncio.run(CLIENTS[client](url, 1))  # one request, then the interpreter exits
        else:
            measure(client, url, int(count))
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="ilagent-bench-http-"))
    fake = FakeIlertProcess(workdir).start()
    rows = []
    try:
        url = f"{fake.api_url}/events"
        for client in available():
            runs = []
            for _ in range(3):
                out = subprocess.run([sys.executable, __file__, "--measure", client, url,
                                      str(args.requests)], capture_output=True, text=True,
                                     check=True, timeout=600).stdout
                runs.append(json.loads(out.strip().splitlines()[-1]))
                print(f"{client}: {runs[-1]['per_second']:,.0f} requests/s, "
                      f"{runs[-1]['cpu_us']:.1f} µs CPU per request", flush=True)
            unclean = {load: exits(client, url, args.exits, loaded=load)
                       for load in (False, True)}
            for load, codes in unclean.items():
                print(f"{client}: {len(codes)} of {args.exits} one-request processes did not "
                      f"exit cleanly{' on a loaded machine' if load else ''} "
                      f"{sorted(set(codes)) or ''}", flush=True)
            rates = sorted(run["per_second"] for run in runs)
            cpus = sorted(run["cpu_us"] for run in runs)
            rows.append(f"| {client} | {rates[-1]:,.0f} / {rates[0]:,.0f} | {cpus[0]:.1f} / "
                        f"{cpus[-1]:.1f} | {_said(unclean[False], args.exits)} | "
                        f"{_said(unclean[True], args.exits)} |")
    finally:
        fake.stop()
    block = "\n".join([
        f"Latest run: {utc_date()} — `{Path(sys.executable).name} bench/bench_http_clients.py`; "
        f"{args.requests:,} POSTs with {IN_FLIGHT} in flight to `bench/fake_ilert.py`, 3 runs "
        "per client (best / worst); then one-request processes, half to the fake and half to a "
        "closed port, counted when they did not exit 0 — on the quiet machine, and with one "
        "busy loop per core running beside them (a node under load during a deploy).",
        "",
        "| client | requests/s | CPU µs per request (all threads) | unclean exits, quiet | "
        "unclean exits, every core busy |",
        "|---|---:|---:|---|---|",
        *rows,
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in machine().items()) + ".",
    ])
    print("\n" + block)
    if not args.no_record and all(name in available() for name in RECORDED_WITH):
        replace_block(RESULTS_FILE, heading=HEADING, begin=BEGIN, end=END, block=block)
        print(f"\nrecorded in {RESULTS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
