"""``ilagent queue list|stats|retry|purge``: options; the work is :mod:`ilagent.spool.admin`'s
on a SQLite spool, :mod:`ilagent.commands.queue_kafka`'s on a Kafka spool (``--spool kafka:T``)."""

from __future__ import annotations

import argparse

from ilagent.commands import queue_kafka
from ilagent.commands.common import Parser, Subparsers, add_global_options, db_file, positive_int
from ilagent.errors import UsageError


def add_parser(sub: Subparsers) -> Parser:
    """Add ``queue`` with its actions and their options."""
    queue: Parser = sub.add_parser(
        "queue", help="inspect and manage the HTTP queue's SQLite file",
        description="List, retry or purge what the daemon's spool file holds; works beside "
                    "a running daemon. On a Kafka spool (--spool kafka:TOPIC) it shows the "
                    "group's lag and the dead letters of --dlq_topic and retries one by "
                    "producing it again; it cannot purge there.",
        epilog="example: ilagent queue list -f /var/lib/ilagent/ilagent.db3\n"
               "         ilagent queue retry --all\n"
               "         ilagent queue list --spool kafka:intake-spool --kafka_brokers k:9092 "
               "--dlq_topic ilagent-dlq")
    # -v/-f on each action; -f here too, under its own name (a nested parser would reset an
    # option of the same name to its default), so `queue -f FILE list` works as well
    queue.add_argument("-f", "--file", dest="queue_db_file", metavar="FILE",
                       help="SQLite file of the daemon's queue (default ./ilagent.db3)")
    actions = queue.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser,
                                   required=True)
    listing = actions.add_parser(
        "list", help="show queued events and dead letters (keys masked)",
        epilog="example: ilagent queue list -f /var/lib/ilagent/ilagent.db3 --limit 20")
    add_global_options(listing)
    listing.add_argument("--limit", type=positive_int, default=100,
                         help="rows per table (default %(default)s)")
    listing.add_argument("--json", action="store_true", help="one JSON object per row")
    queue_kafka.add_options(listing)
    stats = actions.add_parser("stats", help="how many events wait and how many are dead",
                               epilog="example: ilagent queue stats -f ilagent.db3")
    add_global_options(stats)
    queue_kafka.add_options(stats)
    retry = actions.add_parser("retry", help="move dead letters back to the queue",
                               epilog="example: ilagent queue retry 17 18\n"
                                      "         ilagent queue retry --all -f ilagent.db3")
    add_global_options(retry)
    retry.add_argument("ids", nargs="*", metavar="ID",
                       help="dead letters to retry: their ids (a Kafka spool: their "
                            "DLQ_TOPIC:PARTITION:OFFSET)")
    retry.add_argument("--all", action="store_true", help="retry every dead letter")
    queue_kafka.add_options(retry)
    purge = actions.add_parser("purge", help="delete every queued event or every dead letter",
                               epilog="example: ilagent queue purge dead_letters --yes")
    add_global_options(purge)
    purge.add_argument("table", type=lambda t: t.replace("-", "_"),
                       choices=("queue", "dead_letters"),
                       help="queue or dead_letters (dead-letters also works)")
    purge.add_argument("--yes", action="store_true", help="confirm the deletion")
    queue_kafka.add_options(purge)
    return queue


def run(args: argparse.Namespace) -> int:
    """Run the queue action on the spool file, or on the Kafka spool ``--spool`` names."""
    spool = (args.spool or "").strip()
    kind, _, where = spool.partition(":")
    if spool and (not where or kind.lower() not in ("kafka", "sqlite")):
        raise UsageError(f"--spool {spool}: give kafka:TOPIC or sqlite:PATH")
    if spool and (getattr(args, "sub_db_file", None) or getattr(args, "queue_db_file", None)
                  or args.db_file):
        raise UsageError("--spool and -f both name the spool: give one (--spool sqlite:PATH "
                         "is -f PATH)")
    if kind.lower() == "kafka":
        return queue_kafka.run(args, where)
    if args.action == "retry":
        args.ids = [_row_id(i) for i in args.ids]
    from ilagent.spool.admin import run_queue

    return run_queue(args, where if spool else db_file(args))


def _row_id(text: str) -> int:
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"ID {exc} (a SQLite spool's dead letters have whole-number ids)") \
            from None
