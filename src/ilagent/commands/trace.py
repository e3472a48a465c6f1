"""``ilagent trace``: what happened to an event, and why.

On this branch only ``--offset TOPIC:PARTITION:OFFSET`` (:mod:`ilagent.commands.trace_offset`):
one Kafka message read again and explained with today's config. The per-event journal's
``--alert-key`` joins it here.
"""

from __future__ import annotations

import argparse

from ilagent.commands import trace_offset
from ilagent.commands.common import Parser, Subparsers, add_global_options
from ilagent.errors import UsageError


def add_parser(sub: Subparsers) -> Parser:
    """Add ``trace`` and its options."""
    trace: Parser = sub.add_parser(
        "trace", help="explain what became of a message (--offset)",
        description="Explain what the daemon makes of one Kafka message today: read again "
                    "with --offset (no consumer group joined or committed) and mapped with "
                    "the mapping flags and the config file's [[route]]s; nothing is sent.",
        epilog="example: ilagent --config ilagent.toml trace --offset plant-alarms:0:1234")
    add_global_options(trace)
    trace_offset.add_arguments(trace)
    return trace


def run(args: argparse.Namespace) -> int:
    """Dispatch to what the options ask for."""
    if args.offset is None:
        raise UsageError("trace needs --offset TOPIC:PARTITION:OFFSET")
    return trace_offset.run(args)
