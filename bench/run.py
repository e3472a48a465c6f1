"""Run every benchmark (``make bench``), one after another so they never compete for the cores.

Each benchmark is its own process that starts and stops everything it needs, prints its table
and records its figures in its own section of ``bench/RESULTS.md``:

* ``bench/bench_kafka.py`` — the Kafka delivery engine (issue 3);
* ``bench/bench_intake.py`` — the HTTP intake (issue 4), when that file exists;
* ``bench/bench_mqtt.py`` — MQTT mode (issue 13);
* ``bench/bench_restart.py`` — what a crash costs: events sent twice, alerts opened again (issue 19);
* ``bench/bench_routes.py`` — render cost per event of routes and templates (issue 23);
* ``bench/bench_journal.py`` — what the journal costs per delivered event, on against off (issue 25);
* ``bench/bench_cost.py`` — CPU per delivered and per filtered message against a minimal fake
  ilert, with a bare consumer beside it (issue 27);
* ``bench/bench_footprint.py`` — memory and CPU of a daemon that serves no HTTP, and of the
  container's health check.

    .venv/bin/python bench/run.py [--only kafka,intake]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
BENCHMARKS = {"kafka": "bench_kafka.py", "intake": "bench_intake.py", "mqtt": "bench_mqtt.py",
              "restart": "bench_restart.py", "routes": "bench_routes.py",
              "journal": "bench_journal.py", "cost": "bench_cost.py",
              "footprint": "bench_footprint.py"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected benchmarks that exist; exit 1 if any of them failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma list of kafka,intake,mqtt,restart")
    args = parser.parse_args(argv)
    failed = []
    for name, script in BENCHMARKS.items():
        path = BENCH_DIR / script
        if name not in args.only.split(",") or not path.exists():
            continue
        print(f"=== {script}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(path)], cwd=BENCH_DIR.parent)
        print(f"=== {script}: exit {code} after {time.monotonic() - started:.0f} s\n", flush=True)
        if code != 0:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
