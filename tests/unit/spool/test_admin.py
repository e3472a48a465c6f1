"""``ilagent queue list|retry|purge`` driven through the real command line (in process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ilagent.cli import build_parser, main
from ilagent.commands.daemon import daemon_config
from ilagent.spool.db import QueueDB

KEY = "il1apiSECRETKEY0001"


@pytest.fixture
def queue_file(tmp_path: Path) -> str:
    """A queue file with two queued events and two dead letters."""
    path = str(tmp_path / "ilagent.db3")
    db = QueueDB(path)
    with db.transaction():
        ids = [
            db.insert(
                integration_key=KEY,
                path=f"/v1/events/http/{KEY}",
                event=json.dumps(
                    {
                        "integrationKey": KEY,
                        "eventType": "ALERT",
                        "alertKey": f"a{i}",
                        "summary": f"s{i}",
                    }
                ),
                received_at=1_700_000_000.0 + i,
            )
            for i in range(4)
        ]
        db.record_attempt(
            ids[0],
            attempts=2,
            next_attempt_at=1_700_000_100.0,
            last_error=f"503 upstream said {KEY}",
        )
        db.dead_letter(
            ids[2],
            reason="rejected",
            status=400,
            detail="NO_OPEN_ALERT_WITH_KEY",
            attempts=1,
            now=1_700_000_200.0,
        )
        db.dead_letter(
            ids[3],
            reason="retries_exhausted",
            status=None,
            detail="timeout",
            attempts=101,
            now=1_700_000_300.0,
        )
    db.close()
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_both_tables_with_keys_masked(
    queue_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`queue list` prints queued events and dead letters, never an integration key in clear."""
    code, out, _ = run(capsys, "-f", queue_file, "queue", "list")
    assert code == 0
    assert "queue: 2 event(s)" in out and "dead letters: 2" in out
    assert "rejected" in out and "retries_exhausted" in out and "NO_OPEN_ALERT_WITH_KEY" in out
    assert KEY not in out and KEY[-4:] in out


def test_list_json_has_one_object_per_row(
    queue_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`queue list --json` prints one masked JSON object per row, queue first."""
    code, out, _ = run(capsys, "queue", "list", "--json", "-f", queue_file)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [(r["table"], r["id"]) for r in rows] == [
        ("queue", 1),
        ("queue", 2),
        ("dead_letters", 3),
        ("dead_letters", 4),
    ]
    assert rows[0]["attempts"] == 2 and rows[0]["lastError"].startswith("503 upstream said ***")
    assert rows[2]["status"] == 400 and rows[3]["status"] is None
    assert KEY not in out


def test_retry_by_id_moves_a_dead_letter_back(
    queue_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`queue retry 3` puts dead letter 3 back in the queue under its id; again: already queued."""
    code, out, _ = run(capsys, "queue", "retry", "3", "-f", queue_file)
    assert code == 0 and "moved 1 dead letter(s)" in out
    db = QueueDB(queue_file, create=False)
    assert [row.id for row in db.page(after=0, limit=10)] == [1, 2, 3]
    assert [letter.id for letter in db.dead_letters(limit=10)] == [4]
    code, _, err = run(capsys, "queue", "retry", "3", "-f", queue_file)
    assert code == 1 and err.strip() == (
        "ilagent queue retry: error: 3 already queued (not a dead letter); nothing was moved")


def test_retry_all_and_unknown_ids(queue_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown id moves nothing and exits 1; --all moves every dead letter."""
    code, _, err = run(capsys, "queue", "retry", "3", "99", "-f", queue_file)
    assert code == 1 and err.strip() == (
        "ilagent queue retry: error: no dead letter with id 99; nothing was moved"
    )
    code, out, _ = run(capsys, "queue", "retry", "--all", "-f", queue_file)
    assert code == 0 and "moved 2 dead letter(s)" in out
    assert QueueDB(queue_file, create=False).stats().depth == 4


def test_purge_needs_yes(queue_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --yes purge deletes nothing and exits 2; with it the table is emptied."""
    code, _, err = run(capsys, "queue", "purge", "dead_letters", "-f", queue_file)
    assert code == 2 and "add --yes to confirm" in err and len(err.strip().splitlines()) == 1
    assert QueueDB(queue_file, create=False).stats().dead_letters == 2
    code, out, _ = run(capsys, "queue", "purge", "dead_letters", "--yes", "-f", queue_file)
    assert code == 0 and "deleted 2 row(s) of dead_letters" in out
    stats = QueueDB(queue_file, create=False).stats()
    assert (stats.depth, stats.dead_letters) == (2, 0)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        pytest.param(
            ["queue", "retry"],
            2,
            "give the ids of the dead letters to retry, or --all",
            id="retry-nothing",
        ),
        pytest.param(["queue", "retry", "1", "--all"], 2, "or --all", id="retry-both"),
        pytest.param(
            ["queue", "list", "-f", "/nonexistent/dir/x.db3"],
            1,
            "there is no queue file /nonexistent/dir/x.db3",
            id="missing-file",
        ),
        pytest.param(["queue", "purge", "everything"], 2, "invalid choice", id="bad-table"),
        pytest.param(["queue"], 2, "required", id="no-action"),
    ],
)
def test_errors_are_one_line(
    queue_file: str, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    """Usage and file errors are one line on stderr with exit 2 or 1, never a traceback."""
    if "-f" not in args:
        args = [*args, "-f", queue_file] if len(args) > 1 else args
    got, _, err = run(capsys, *args)
    assert got == code and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_file_that_is_no_database_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that is not SQLite gets a one-line error and exit 1."""
    junk = tmp_path / "junk.db3"
    junk.write_bytes(b"this is not a database at all" * 100)
    code, _, err = run(capsys, "queue", "list", "-f", str(junk))
    assert code == 1 and err.startswith("ilagent queue list: error: cannot open the queue file")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param([], 0, id="default-never"),
        pytest.param(["--max_retries", "5"], 5, id="five"),
        pytest.param(["--max_retries", "0"], 0, id="unlimited"),
    ],
)
def test_max_retries_applies_to_every_source(given: list[str], expected: int) -> None:
    """Without --max_retries no source gives up on transient failures; a value bounds them all."""
    args = build_parser().parse_args(["daemon", "-p", "8977", *given])
    assert daemon_config(args).retry.max_retries == expected
