"""``ilagent queue`` on a Kafka spool (``--spool kafka:TOPIC``): what it can and cannot do there.

It can show the depth (the lag of ``--kafka_group_id`` on the spool topic: records not yet
committed, some of them perhaps delivered already), list the spool's dead letters from
``--dlq_topic`` and retry one by producing its record to the spool topic again (by its
position, ``DLQ_TOPIC:PARTITION:OFFSET``, as ``list`` shows it). It cannot delete anything: a
topic loses records only by retention, and the dead-letter topic keeps a retried letter, so
``purge`` and ``retry --all`` are refused (exit 2) with what to do instead. Nothing is
committed and no group is joined; integration keys are masked.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from ilagent.commands.common import positive_seconds
from ilagent.commands.kafka_options import add_connection_options, check_sasl, kafka_properties
from ilagent.commands.sources import Sources
from ilagent.config import DEFAULT_KAFKA_GROUP_ID
from ilagent.errors import EXIT_OK, UsageError
from ilagent.logs import hide_secrets, mask, mask_key

DEFAULT_TIMEOUT = 10.0
CANNOT_PURGE = (
    "a Kafka spool cannot be purged: records leave a topic only by its retention. To drop "
    "what waits, stop the daemons and move the group past it (kafka-consumer-groups "
    "--reset-offsets --to-latest --group {group} --topic {topic} --execute); dead letters "
    "stay in {dlq} until its retention ends")
CANNOT_RETRY_ALL = (
    "retry --all is refused on a Kafka spool: the dead-letter topic keeps every letter, "
    "retried or not, so --all would send the ones retried before again; give the positions "
    "`ilagent queue list --spool kafka:{topic}` shows")


def add_options(parser: Any) -> None:
    """``--spool`` and what a Kafka spool needs: the cluster, the group and the DLQ topic."""
    group = parser.add_argument_group("the spool on Kafka")
    group.add_argument("--spool", metavar="kafka:TOPIC|sqlite:PATH",
                       help="the daemon's spool: a Kafka topic (kafka:TOPIC: depth from the "
                            "group's lag, dead letters from --dlq_topic) or a SQLite file "
                            "(sqlite:PATH, the same as -f PATH)")
    add_connection_options(group)
    group.add_argument("--kafka_group_id", default=DEFAULT_KAFKA_GROUP_ID, metavar="GROUP",
                       help="the daemons' consumer group (default %(default)s)")
    group.add_argument("--dlq_topic", metavar="TOPIC",
                       help="the daemons' dead-letter topic (without it: no dead letters kept)")
    group.add_argument("--timeout", type=positive_seconds, default=DEFAULT_TIMEOUT,
                       metavar="SECONDS",
                       help="for reaching the brokers and reading (default %(default)s)")


def letter_position(text: str) -> tuple[str, int, int]:
    """``TOPIC:PARTITION:OFFSET`` of a dead letter; ``UsageError`` for anything else."""
    topic, _, offset = text.rpartition(":")
    topic, _, partition = topic.rpartition(":")
    if not topic or not partition.isdigit() or not offset.isdigit():
        raise UsageError(f"{text!r} is not a dead letter's DLQ_TOPIC:PARTITION:OFFSET (as "
                         "`queue list` shows it)")
    return topic, int(partition), int(offset)


def run(args: argparse.Namespace, topic: str, *, out: TextIO | None = None) -> int:
    """Run the ``queue`` action on the spool topic ``topic``."""
    out = out or sys.stdout
    if args.action == "purge":
        raise UsageError(CANNOT_PURGE.format(group=args.kafka_group_id, topic=topic,
                                             dlq=args.dlq_topic or "the dead-letter topic"))
    if args.action == "retry" and args.all:
        raise UsageError(CANNOT_RETRY_ALL.format(topic=topic))
    if not args.kafka_brokers:
        raise UsageError(f"--spool kafka:{topic} needs --kafka_brokers (the cluster of the "
                         "topic)")
    positions = [letter_position(i) for i in args.ids] if args.action == "retry" else []
    if args.action == "retry" and not positions:
        raise UsageError("give the positions of the dead letters to retry "
                         "(DLQ_TOPIC:PARTITION:OFFSET)")
    if positions and not args.dlq_topic:
        raise UsageError("retry needs --dlq_topic: the dead-letter topic the letters are in")
    wrong = [p for p in positions if p[0] != args.dlq_topic]
    if wrong:
        raise UsageError(f"{':'.join(map(str, wrong[0]))} is not in --dlq_topic "
                         f"{args.dlq_topic}")
    sources: Sources = getattr(args, "sources", None) or Sources()
    properties = kafka_properties(args, sources)
    check_sasl(properties)
    from ilagent.kafka import spool_admin  # loads librdkafka

    common = {"brokers": args.kafka_brokers, "timeout": args.timeout}
    if positions:
        done = spool_admin.retry(properties, dlq_topic=args.dlq_topic, spool_topic=topic,
                                 positions=[(p, o) for _t, p, o in positions], **common)
        for r in done:
            print(f"re-produced {args.dlq_topic}:{r.letter_partition}:{r.letter_offset} to "
                  f"{topic}:{r.partition}:{r.offset}", file=out)
        print(f"retried {len(done)} dead letter(s); they stay in {args.dlq_topic} (a topic "
              "deletes nothing): do not retry them twice", file=out)
        return EXIT_OK
    depth = spool_admin.spool_depth(properties, topic=topic, group=args.kafka_group_id,
                                    **common)
    waiting = sum(d.waiting for d in depth)
    as_json = getattr(args, "json", False)
    if not as_json:
        print(f"queue: {waiting} record(s) of {topic} not yet committed by group "
              f"{args.kafka_group_id} (its lag; some may be delivered already)", file=out)
        if args.action == "list":
            for d in depth:
                print(f"  partition {d.partition:>3}: low {d.low}, high {d.high}, committed "
                      f"{'-' if d.committed is None else d.committed}, waiting {d.waiting}",
                      file=out)
    if not args.dlq_topic:
        if not as_json:
            print("dead letters: not kept (no --dlq_topic: the daemons log them)", file=out)
        return EXIT_OK
    if args.action == "stats":
        size = spool_admin.topic_size(properties, topic=args.dlq_topic, **common)
        print(f"dead-letter topic {args.dlq_topic}: {size} record(s) (of every source, "
              "retried ones included)", file=out)
        return EXIT_OK
    letters, others = spool_admin.dead_letters(
        properties, dlq_topic=args.dlq_topic, spool_topic=topic, count=args.limit, **common)
    rows = [_letter_json(letter) for letter in letters]
    if as_json:
        for row in [{"table": "depth", "topic": topic, "group": args.kafka_group_id,
                     "waiting": waiting}, *rows]:
            print(hide_secrets(json.dumps(row)), file=out)
        return EXIT_OK
    print(f"dead letters of {topic} among the newest {args.limit} of {args.dlq_topic}: "
          f"{len(rows)}{f' ({others} of other topics not shown)' if others else ''}", file=out)
    if rows:
        print(f"  {'ID':24}  {'KIND':9}  {'REASON':18}  {'STATUS':6}  {'KEY':14}  "
              f"{'ALERT KEY':16}  DETAIL", file=out)
    for row in rows:
        print(hide_secrets(
            f"  {row['id']:24}  {row['kind']:9}  {row['reason']:18}  {row['status']:6}  "
            f"{row['integrationKey'][-14:]:14}  {row['alertKey'][:16]:16}  {row['detail'][:60]}"),
            file=out)
    if rows:
        print(f"retry one: ilagent queue retry {rows[0]['id']} --spool kafka:{topic} "
              f"--dlq_topic {args.dlq_topic} --kafka_brokers …", file=out)
    return EXIT_OK


def _letter_json(letter: Any) -> dict[str, Any]:
    """A dead letter of the spool as ``list`` shows it (keys masked)."""
    headers = {name: raw.decode(errors="replace") for name, raw in letter.headers}
    key = (letter.key or b"").decode(errors="replace")
    try:
        body = json.loads(letter.value)
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    return {"table": "dead_letters", "id": f"{letter.topic}:{letter.partition}:{letter.offset}",
            "kind": headers.get("ilagent-kind", "?"),
            "reason": headers.get("ilagent.reason", ""),
            "status": headers.get("ilagent.http_status", "") or "-",
            "integrationKey": mask_key(key),
            "alertKey": str(body.get("alertKey", "")),
            "summary": mask(str(body.get("summary", "")), key),
            "detail": mask(headers.get("ilagent.detail", ""), key),
            "source": f"{headers.get('ilagent.source.topic', '')}:"
                      f"{headers.get('ilagent.source.partition', '')}:"
                      f"{headers.get('ilagent.source.offset', '')}"}
