"""``ilagent queue list|retry|purge``: options; the work is :mod:`ilagent.spool.admin`'s."""

from __future__ import annotations

import argparse

from ilagent.commands.common import Parser, Subparsers, add_global_options, db_file, positive_int


def add_parser(sub: Subparsers) -> Parser:
    """Add ``queue`` with its actions and their options."""
    queue: Parser = sub.add_parser(
        "queue", help="inspect and manage the HTTP queue's SQLite file",
        description="List, retry or purge what the daemon's spool file holds; works beside "
                    "a running daemon.",
        epilog="example: ilagent queue list -f /var/lib/ilagent/ilagent.db3\n"
               "         ilagent queue retry --all")
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
    retry = actions.add_parser("retry", help="move dead letters back to the queue",
                               epilog="example: ilagent queue retry 17 18\n"
                                      "         ilagent queue retry --all -f ilagent.db3")
    add_global_options(retry)
    retry.add_argument("ids", nargs="*", type=positive_int, metavar="ID",
                       help="dead letters to retry")
    retry.add_argument("--all", action="store_true", help="retry every dead letter")
    purge = actions.add_parser("purge", help="delete every queued event or every dead letter",
                               epilog="example: ilagent queue purge dead_letters --yes")
    add_global_options(purge)
    purge.add_argument("table", type=lambda t: t.replace("-", "_"),
                       choices=("queue", "dead_letters"),
                       help="queue or dead_letters (dead-letters also works)")
    purge.add_argument("--yes", action="store_true", help="confirm the deletion")
    return queue


def run(args: argparse.Namespace) -> int:
    """Run the queue action on the spool file."""
    from ilagent.spool.admin import run_queue

    return run_queue(args, db_file(args))
