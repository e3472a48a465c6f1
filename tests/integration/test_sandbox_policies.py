"""``ilagent sandbox`` as a process: seeded from a file and flags or over HTTP, it answers the
policy calls with the Bearer key, keeps its startup seed across resets and never logs a key."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import Sandbox, http, plant_three, secret, start_sandbox

SEED = plant_three()
RESOLVE = "/api/escalation-policies/resolve?routing-key=powerplantthree50"


def shift_change(sandbox: Sandbox, api_key: str, *, email: str, level: int) -> list[int]:
    """ilagent's three calls for "<email> is on shift <level>"; the statuses they got."""
    auth = {"Authorization": f"Bearer {api_key}"}
    found, user = http("POST", f"{sandbox.api_url}/users/search-email", {"email": email}, auth)
    resolved, policy = http("GET", f"{sandbox.url}{RESOLVE}", headers=auth)
    if found != 200 or resolved != 200:
        return [found, resolved]
    timeout = policy["escalationRules"][level]["escalationTimeout"]
    body = {"escalationTimeout": timeout, "users": [{"id": user["id"]}]}
    path = f"{sandbox.api_url}/escalation-policies/{policy['id']}/levels/{level}"
    return [found, resolved, http("PUT", path, body, auth)[0]]


def test_session_sandbox_seeded_over_http_moves_a_level(sandbox: Sandbox) -> None:
    """The shared sandbox, seeded over HTTP, puts Bob on level 1 and records the three calls."""
    api_key = secret("policy-key")
    sandbox.seed(apiKeys=[api_key], **SEED)
    assert shift_change(sandbox, api_key, email="bob@example.com", level=1) == [200, 200, 200]
    assert sandbox.level_emails("powerplantthree50", 1) == ["bob@example.com"]
    assert sandbox.level_emails("powerplantthree50", 0) == ["ann@example.com"]
    paths = [(r["method"], r["path"], r["status"]) for r in sandbox.requests()]
    assert paths == [
        ("POST", "/api/users/search-email", 200),
        ("GET", RESOLVE, 200),
        ("PUT", "/api/escalation-policies/3/levels/1", 200),
    ]
    sandbox.reset()
    assert sandbox.policies() == []


@pytest.fixture
def seeded_process(tmp_path: Path) -> Iterator[tuple[Sandbox, str, Path]]:
    """``ilagent sandbox --seed FILE --api_key KEY`` on its own port; (sandbox, key, log)."""
    import broker

    api_key = secret("flag-key")
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps(SEED))
    port, log = broker.free_port(), tmp_path / "sandbox.log"
    proc = start_sandbox(port, log, "--seed", str(seed_file), "--api_key", api_key)
    try:
        yield Sandbox(f"http://127.0.0.1:{port}"), api_key, log
    finally:
        proc.terminate()
        proc.wait(15)


def test_seed_file_and_api_key_flag_survive_reset_and_stay_out_of_the_log(
    seeded_process: tuple[Sandbox, str, Path],
) -> None:
    """Users and policies of --seed and the --api_key key answer at once; a reset puts the
    level back as seeded and keeps the key; no log line shows the key."""
    sandbox, api_key, log = seeded_process
    assert shift_change(sandbox, api_key, email="bob@example.com", level=0) == [200, 200, 200]
    assert sandbox.level_emails("powerplantthree50", 0) == ["bob@example.com"]
    assert shift_change(sandbox, "not-the-key", email="bob@example.com", level=0) == [401, 401]
    sandbox.reset()
    assert sandbox.level_emails("powerplantthree50", 0) == ["ann@example.com"]
    assert shift_change(sandbox, api_key, email="nobody@example.com", level=0) == [404, 200]
    assert "sandbox" in log.read_text()
    assert api_key not in log.read_text()


def run_sandbox(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    import broker

    port = str(broker.free_port())  # never bound: the seed is checked before listening
    return subprocess.run([sys.executable, "-m", "ilagent", "sandbox", "-p", port, *args],
                          capture_output=True, text=True, timeout=60, check=False, cwd=cwd)


@pytest.mark.parametrize(
    ("content", "args", "code", "first_line"),
    [
        (None, ["--seed", "missing.json"], 1,
         "ilagent sandbox: error: cannot read --seed missing.json: No such file or directory"),
        ("{not json", ["--seed", "seed.json"], 2,
         "ilagent sandbox: error: --seed seed.json is not JSON: "),
        ('{"users": [{"id": 1}]}', ["--seed", "seed.json"], 2,
         "ilagent sandbox: error: --seed seed.json: 'users[0].email' must be an e-mail address"),
        ('{"policies": [{"escalationRules": [{"users": [{"id": 9}]}]}]}', ["--seed", "seed.json"],
         2, "ilagent sandbox: error: --seed seed.json: a level names user id 9, who is not seeded"),
        (None, ["--api_key", "two words"], 2,
         "ilagent sandbox: error: '--api_key' must be a non-empty string without spaces"),
    ],
)
def test_an_unusable_seed_or_key_is_one_line(tmp_path: Path, content: str | None, args: list[str],
                                             code: int, first_line: str) -> None:
    """A seed file that is missing, not JSON or inconsistent, or a bad --api_key: one line, the
    exit code of its kind, and the sandbox never starts."""
    if content is not None:
        (tmp_path / "seed.json").write_text(content)
    done = run_sandbox(*args, cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert (done.returncode, len(lines)) == (code, 1), done.stderr
    assert lines[0].startswith(first_line), lines[0]
