"""``ilagent queue list|stats|retry|purge``: inspect and manage the HTTP queue's SQLite file.

It works on the file of a running daemon too: WAL lets both read, and a write waits its turn
(up to 5 s). ``list`` opens the file read-only; no command creates tables in a file that is
not an ilagent spool. After ``purge`` or ``retry`` beside a running daemon the command waits
(up to :data:`ACK_TIMEOUT` s) until the daemon has seen the change, so a purged event is
never sent by a copy it still held in memory. Integration keys are masked in every line. A
problem is one line on stderr: exit 2 for a usage error (nothing to retry, no ``--yes``), 1 for
a file or id that is not there, or a file a newer ilagent wrote. ``list`` shows what each row
holds (its kind), and reads an older file as it is, without bringing it forward.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from ilagent.errors import IlagentError, NotFoundError, ResourceError, UsageError
from ilagent.logs import mask, mask_key
from ilagent.spool.checks import NotASpool
from ilagent.spool.db import DeadLetter, QueueDB, QueuedEvent, QueueStats
from ilagent.spool.lock import holder

ACK_TIMEOUT = 10.0


def run_queue(
    args: argparse.Namespace, path: str, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run one ``queue`` action on the file at ``path``; returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        if args.action == "retry" and bool(args.ids) == bool(args.all):
            raise UsageError("give the ids of the dead letters to retry, or --all")
        if not os.path.exists(path):
            raise NotFoundError(f"there is no queue file {path} (the daemon's -f file; "
                                "default ./ilagent.db3)")
        try:
            db = QueueDB(path, create=False, read_only=args.action in ("list", "stats"))
        except NotASpool as exc:
            raise ResourceError(str(exc)) from None
        except sqlite3.Error as exc:
            raise ResourceError(f"cannot open the queue file {path}: {exc}") from None
        try:
            if args.action == "list":
                _list(db, limit=args.limit, as_json=args.json, out=out)
            elif args.action == "stats":
                _stats(db, out=out)
            elif args.action == "retry":
                _retry(db, None if args.all else args.ids, out=out)
                _tell_owner(db, path, out=out)
            else:
                _purge(db, args.table, confirmed=args.yes, out=out)
                _tell_owner(db, path, out=out)
        except sqlite3.Error as exc:
            raise ResourceError(f"the queue file {path} failed: {exc}") from None
        finally:
            db.close()
    except IlagentError as refused:
        print(f"ilagent queue {args.action}: error: {refused}", file=err)
        return refused.exit_code
    return 0


def _tell_owner(db: QueueDB, path: str, *, out: TextIO) -> None:
    """Wait until a daemon running on the file has seen the change just made."""
    pid = holder(path)
    if pid is None:
        return
    generation, _seen = db.generations()
    deadline = time.monotonic() + ACK_TIMEOUT
    while time.monotonic() < deadline:
        if db.generations()[1] >= generation:
            print(f"the running daemon (pid {pid}) has taken the change into account", file=out)
            return
        time.sleep(0.05)
    print(f"the running daemon (pid {pid}) has not confirmed the change yet; it will within "
          "a second of its next check", file=out)


def _list(db: QueueDB, *, limit: int, as_json: bool, out: TextIO) -> None:
    events, mqtt = db.legacy_waiting()
    if db.has_own_tables():
        stats = db.stats()
        queued, dead = db.page(after=0, limit=limit), db.dead_letters(limit=limit)
    else:  # only ilagent 0.9 has used the file yet
        stats, queued, dead = QueueStats(0, None, 0), [], []
    if as_json:
        for row in queued:
            print(json.dumps(_queued_json(row)), file=out)
        for letter in dead:
            print(json.dumps(_dead_json(letter)), file=out)
        return
    print(f"queue: {stats.depth} event(s)", file=out)
    if queued:
        print(
            f"  {'ID':>8}  {'KIND':9}  {'RECEIVED':20}  {'TRIES':>5}  {'NEXT TRY':20}  "
            f"{'KEY':14}  {'TYPE':8}  {'ALERT KEY':16}  SUMMARY | LAST ERROR",
            file=out,
        )
    for row in queued:
        info = _queued_json(row)
        print(
            f"  {row.id:>8}  {_cut(row.kind, 9):9}  {info['receivedAt']:20}  {row.attempts:>5}  "
            f"{info['nextAttemptAt'] or '-':20}  {info['integrationKey'][-14:]:14}  "
            f"{info['eventType']:8}  {_cut(info['alertKey'], 16):16}  "
            f"{_cut(info['summary'], 40)}"
            f"{' | ' + _cut(info['lastError'], 80) if row.last_error else ''}",
            file=out,
        )
    print(f"dead letters: {stats.dead_letters}", file=out)
    if dead:
        print(
            f"  {'ID':>8}  {'KIND':9}  {'DEAD SINCE':20}  {'TRIES':>5}  {'REASON':18}  "
            f"{'STATUS':13}  {'KEY':14}  {'TYPE':8}  {'ALERT KEY':16}  DETAIL",
            file=out,
        )
    for letter in dead:
        info = _dead_json(letter)
        print(
            f"  {letter.id:>8}  {_cut(letter.kind, 9):9}  {info['deadAt']:20}  "
            f"{letter.attempts:>5}  "
            f"{letter.reason:18}  {_status(letter.status):13}  {info['integrationKey'][-14:]:14}  "
            f"{info['eventType']:8}  {_cut(info['alertKey'], 16):16}  "
            f"{_cut(info['detail'], 60)}",
            file=out,
        )
    if events or mqtt:
        print(f"ilagent 0.9 rows awaiting takeover: {events} event(s) in event_items "
              f"(the daemon moves them into the queue at start), {mqtt} MQTT message(s) in "
              "mqtt_queue", file=out)
    if stats.depth > len(queued) or stats.dead_letters > len(dead):
        print(f"(first {limit} of each shown; --limit N for more)", file=out)


def _stats(db: QueueDB, *, out: TextIO) -> None:
    stats = db.stats() if db.has_own_tables() else QueueStats(0, None, 0)
    print(f"queue: {stats.depth} event(s)", file=out)
    print(f"dead letters: {stats.dead_letters}", file=out)


def _retry(db: QueueDB, ids: list[int] | None, *, out: TextIO) -> None:
    with db.transaction():
        if ids is not None:
            missing = sorted(set(ids) - db.dead_letter_ids(ids))
            queued = sorted(db.present(missing))
            if queued:
                raise NotFoundError(
                    f"{', '.join(map(str, queued))} already queued (not a dead letter); "
                    "nothing was moved")
            if missing:
                raise NotFoundError(
                    f"no dead letter with id {', '.join(map(str, missing))}; nothing was moved"
                )
        moved = db.retry(ids)
    print(f"moved {moved} dead letter(s) back to the queue", file=out)


def _purge(db: QueueDB, table: str, *, confirmed: bool, out: TextIO) -> None:
    if not confirmed:
        stats = db.stats()
        count = stats.depth if table == "queue" else stats.dead_letters
        raise UsageError(
            f"this deletes {count} row(s) of {table} for good; add --yes to confirm"
        )
    with db.transaction():
        deleted = db.purge(table)
    print(f"deleted {deleted} row(s) of {table}", file=out)


def _event_fields(integration_key: str, path: str, event: str, kind: str) -> dict[str, Any]:
    try:
        body = json.loads(event)
    except ValueError:
        body = {}
    if not isinstance(body, dict):  # an MQTT message kept as received may be any JSON
        body = {}
    return {
        "kind": kind,
        "integrationKey": mask_key(integration_key),
        "path": mask(path, integration_key),
        "eventType": str(body.get("eventType", "")),
        "alertKey": str(body.get("alertKey", "")),
        "summary": mask(str(body.get("summary", "")), integration_key),
    }


def _queued_json(row: QueuedEvent) -> dict[str, Any]:
    return {
        "table": "queue",
        "id": row.id,
        **_event_fields(row.integration_key, row.path, row.event, row.kind),
        "receivedAt": _when(row.received_at),
        "attempts": row.attempts,
        "nextAttemptAt": _when(row.next_attempt_at) if row.next_attempt_at else None,
        "lastError": mask(row.last_error or "", row.integration_key),
    }


def _dead_json(letter: DeadLetter) -> dict[str, Any]:
    return {
        "table": "dead_letters",
        "id": letter.id,
        **_event_fields(letter.integration_key, letter.path, letter.event, letter.kind),
        "receivedAt": _when(letter.received_at),
        "deadAt": _when(letter.dead_at),
        "attempts": letter.attempts,
        "reason": letter.reason,
        "status": letter.status,
        "detail": mask(letter.detail, letter.integration_key),
    }


def _status(status: int | None) -> str:
    return "-" if status is None else str(status)


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cut(text: str, width: int) -> str:
    """Shortened to ``width``, control characters shown escaped (a summary must not recolour
    or clear the terminal)."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= width else text[: width - 1] + "…"
