"""``ilagent queue`` chooses its spool: ``-f``/``--spool sqlite:PATH`` the file, ``--spool
kafka:TOPIC`` the topic; what cannot work there is one line and exit 2 before any broker is
asked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ilagent.cli import main
from ilagent.spool.db import QueueDB

KEY = "il1apiSPOOLCHOICE0001"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def queue_file(tmp_path: Path) -> str:
    """A queue file with two queued events."""
    path = str(tmp_path / "ilagent.db3")
    db = QueueDB(path)
    with db.transaction():
        for i in range(2):
            db.insert(integration_key=KEY, path=f"/v1/events/http/{KEY}",
                      event=json.dumps({"integrationKey": KEY, "alertKey": f"a{i}"}),
                      received_at=1_700_000_000.0 + i)
    db.close()
    return path


def test_stats_counts_a_files_queue_and_dead_letters(
        queue_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`queue stats` on a SQLite spool: the depth and the dead letters, one line each."""
    code, out, _ = run(capsys, "queue", "stats", "-f", queue_file)
    assert (code, out) == (0, "queue: 2 event(s)\ndead letters: 0\n")


def test_spool_sqlite_names_the_file_as_f_does(
        queue_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--spool sqlite:PATH is -f PATH for queue as for the daemon."""
    code, out, _ = run(capsys, "queue", "stats", "--spool", f"sqlite:{queue_file}")
    assert code == 0 and out.startswith("queue: 2 event(s)")


@pytest.mark.parametrize(("argv", "said"), [
    (["queue", "stats", "--spool", "kafka:s", "-f", "x.db3"], "--spool and -f both name"),
    (["queue", "list", "--spool", "redis:s"], "give kafka:TOPIC or sqlite:PATH"),
    (["queue", "list", "--spool", "kafka:s"], "needs --kafka_brokers"),
    (["queue", "retry", "s:0:1", "--spool", "kafka:s", "--kafka_brokers", "b:9092"],
     "retry needs --dlq_topic"),
    (["queue", "retry", "nope", "--spool", "kafka:s", "--kafka_brokers", "b:9092"],
     "is not a dead letter's DLQ_TOPIC:PARTITION:OFFSET"),
    (["queue", "retry", "d:0:1", "-f", "x.db3"], "a SQLite spool's dead letters have"),
    (["queue", "purge", "queue", "--yes", "--spool", "kafka:s"], "cannot be purged"),
])
def test_what_cannot_work_is_one_line_and_exit_2(
        argv: list[str], said: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A spool named twice or wrongly, a Kafka spool without brokers or DLQ topic, a position
    that is not one, a Kafka position given to a file, a purge of a topic: exit 2, one line."""
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert said in err and len(err.strip().splitlines()) == 1
