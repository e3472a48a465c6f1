"""Render cost per event of routes and templates (issue 23), against the mapping flags.

In one process, without I/O: the same message read (1) by the mapping flags
(``mapping.reading.read``, what every existing command line runs), (2) by one ``[[route]]``
mapping the same fields with plain paths and no template, (3) by one route with the README's
templates (summary, alert key, labels, a link, picked details), (4) by three routes of which
two take the message (fan-out), and (5) a filtered message passed over by three routes. Each
figure is the median of ``--repeat`` timed loops of ``--messages`` reads, in microseconds of
CPU per message (``time.process_time``), serialisation of the event included.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS_FILE, machine, replace_block, utc_date
from ilagent.config import MappingRules, PolicyRules
from ilagent.mapping.reading import read, read_routed
from ilagent.mapping.route_tables import load_routes
from ilagent.mapping.routes import Route
from ilagent.mapping.topics import Kind

HEADING = "## Routes and templates (issue 23): render cost per event"
BEGIN = "<!-- bench_routes:begin (written by bench/bench_routes.py; edits in here are lost) -->"
END = "<!-- bench_routes:end -->"

MESSAGE = (b'{"type":"ALARM","state":"SET","mCode":"M1","comment":"door open","line":3,'
           b'"severity":"critical","ts":1764730680,"meta":{"shift":"night","plant":"P1"}}')
FILTERED = b'{"type":"INFO","state":"SET","mCode":"M1","comment":"all good"}'
FLAGS = MappingRules(event_key="il1apibenchroutes0000001", map_key_alert_key="mCode",
                     map_key_summary="comment", map_key_etype="state",
                     map_val_etype_alert="SET", map_val_etype_resolve="CLR",
                     filter_key="type", filter_val="ALARM")
PLAIN = """
[[route]]
name = "plain"
integration_key = "il1apibenchroutes0000001"
match = { path = "type", equals = "ALARM" }
event_type = { path = "state", alert = "SET", resolve = "CLR" }
"""
TEMPLATED = """
[[route]]
name = "line3"
integration_key = "il1apibenchroutes0000001"
match = [{ path = "type", equals = "ALARM" }, { path = "state", in = ["SET", "CLR"] }]
event_type = { path = "state", alert = "SET", resolve = "CLR" }
priority = { path = "severity", high = ["critical", "major"], default = "LOW" }
summary = "Line {{ payload.line }} / press {{ payload.mCode }}: {{ payload.comment | default('alarm') }} (since {{ payload.ts | timestamp('%H:%M') }})"
alert_key = "line{{ payload.line }}-{{ payload.mCode }}"
labels = { line = "{{ payload.line }}", shift = "{{ payload.meta.shift }}" }
links = [{ href = "https://wiki.example/press/{{ payload.mCode }}", text = "runbook" }]
custom_details = { pick = ["mCode", "state", "meta.shift"] }
"""
OTHERS = """
[[route]]
name = "audit"
integration_key = "il1apibenchroutes0000002"
match = { path = "severity", equals = "critical" }
summary = "audit: {{ payload.mCode }} {{ payload.comment }}"
alert_key = "audit-{{ payload.mCode }}"

[[route]]
name = "other"
integration_key = "il1apibenchroutes0000003"
match = { path = "type", equals = "MAINTENANCE" }
summary = "{{ payload.comment }}"
"""


def routes(text: str) -> tuple[Route, ...]:
    return load_routes(tomllib.loads(text)["route"], where="bench")


def cases() -> list[tuple[str, Callable[[], object]]]:
    plain, templated, three = routes(PLAIN), routes(TEMPLATED), routes(TEMPLATED + OTHERS)
    policy = PolicyRules()

    def flags() -> object:
        return read(Kind.EVENT, MESSAGE, topic="t", rules=FLAGS, policy_rules=policy,
                    source="kafka", message_key=b"k")

    def flags_filtered() -> object:
        return read(Kind.EVENT, FILTERED, topic="t", rules=FLAGS, policy_rules=policy,
                    source="kafka", message_key=b"k")

    return [
        ("mapping flags (no route), one event", flags),
        ("one route, value map, no template", lambda: read_routed(plain, MESSAGE, topic="t",
                                                                  source="kafka")),
        ("one route with the README's templates", lambda: read_routed(templated, MESSAGE,
                                                                      topic="t",
                                                                      source="kafka")),
        ("three routes, two take it (two events)", lambda: read_routed(three, MESSAGE,
                                                                       topic="t",
                                                                       source="kafka")),
        ("mapping flags, filtered", flags_filtered),
        ("three routes, none takes it (filtered)", lambda: read_routed(three, FILTERED,
                                                                       topic="t",
                                                                       source="kafka")),
    ]


def measure(run: Callable[[], object], messages: int, repeat: int) -> float:
    """Median µs of CPU per message over ``repeat`` loops of ``messages`` reads."""
    for _ in range(min(messages, 2000)):  # warm up
        run()
    figures = []
    for _ in range(repeat):
        start = time.process_time()
        for _ in range(messages):
            run()
        figures.append((time.process_time() - start) / messages * 1e6)
    return statistics.median(figures)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-record", action="store_true", help="leave RESULTS.md alone")
    args = parser.parse_args()
    rows, base = [], None
    for name, run in cases():
        micros = measure(run, args.messages, args.repeat)
        base = base if base is not None else micros
        rows.append([name, f"{micros:.1f}", f"{micros / base:.2f}x"])
        print(f"  {name}: {micros:.1f} µs per message", flush=True)
    table = "\n".join(["| read | µs CPU per message | vs flags |", "|---|---:|---:|",
                       *(f"| {' | '.join(row)} |" for row in rows)])
    print(table)
    if not args.no_record:
        facts = machine()
        block = (f"Latest run: {utc_date()} — `.venv/bin/python bench/bench_routes.py "
                 f"--messages {args.messages} --repeat {args.repeat}`, median of "
                 f"{args.repeat} loops, on {facts['cores (nproc)']} cores ({facts['CPU']}), "
                 f"Python {facts['Python']}:\n\n{table}\n")
        replace_block(RESULTS_FILE, heading=HEADING, begin=BEGIN, end=END, block=block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
