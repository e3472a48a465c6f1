"""``ilagent drill [daemon options…]``: one fire drill now, each stage printed with its time.

It runs the daemon itself, from the same options (flags, ``ILAGENT_*``, the TOML file), with a
one-shot drill: the parts start, the drill goes through each drilled source as soon as every
part is ready (or after ``--drill_timeout``), the stages are printed, and the daemon stops —
exit 0 when every drilled source passed, 1 when one failed (or all were skipped: nothing
proven), 2 for a usage error. For that moment it is a daemon like any other: a Kafka consumer
joins its group as one more replica (what it reads it delivers, as a replica would), the HTTP
intake needs its port, the spool file its lock — so beside a running daemon give it another
``-p`` and ``-f``.
"""

from __future__ import annotations

import argparse
import asyncio

from ilagent.commands import daemon
from ilagent.commands.common import Parser, Subparsers, add_global_options, routes_of
from ilagent.commands.sources import Sources
from ilagent.logs import hide_secrets, mask_key


def add_parser(sub: Subparsers) -> Parser:
    """Add ``drill``, which takes every option of ``daemon``."""
    drill: Parser = sub.add_parser(
        "drill", help="run one fire drill now and print each stage with its time",
        description="Start the daemon's parts from the daemon's options, send one fire drill "
                    "through each drilled source (--drill_topic, --drill_mqtt_topic, "
                    "--drill_intake), follow it to ilert, print each stage with its time and "
                    "stop: exit 0 when it passed, 1 when not.",
        epilog="example: ilagent --config /etc/ilagent/ilagent.toml drill --drill_topic alarms "
               "--drill_message sample.json")
    add_global_options(drill)
    daemon.add_options(drill)
    drill.set_defaults(drill_once=True)
    return drill


def run(args: argparse.Namespace) -> int:
    """Run the daemon for one drill; print its stages."""
    from ilagent.daemon import Daemon

    sources = getattr(args, "sources", None) or Sources()
    routes = routes_of(args, sources)
    config = daemon.daemon_config(args, sources, routes)
    runner = Daemon(config, routes)
    code = asyncio.run(runner.run())
    desk = runner.drills
    if desk is None or desk.last is None:
        print("no drill ran: the daemon stopped first (see the log above)")
        return code or 1
    from ilagent.drills.report import stage_lines

    lines = stage_lines(desk.last)
    key = config.drill.heartbeat if config.drill is not None else None
    if key and desk.pinged is not None:
        lines.append(f"drill heartbeat {mask_key(key)} "
                     f"{'pinged' if desk.pinged else 'NOT pinged: ilert refused the ping'}")
    print(hide_secrets("\n".join(lines)))
    return code
