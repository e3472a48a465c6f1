"""Who may use the daemon's HTTP API: the allow list, bearer tokens (several, and a file that
is re-read), and the per-address rate limit — real daemons against the sandbox, each request
sent from a chosen source address (every 127.0.0.0/8 address is this machine's)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
from http_daemon import call, event, start_daemon

from helpers import Sandbox, secret, unique, wait_until


def own_address() -> str | None:
    """This machine's address on its default route (not loopback), or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))  # no packet is sent: this only picks a route
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def test_the_allow_list_admits_only_its_clients_and_the_probes_answer_everyone(
        sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """--http_allow 127.0.0.1/32 without a token: a client at 127.0.0.2 gets 403 (ilert-style
    JSON, one sentence naming it) for events, heartbeats, /metrics, /health?details and /,
    and nothing of it reaches ilert; 127.0.0.1 gets 202; /health and /ready answer both."""
    _daemon, base = start_daemon(run_ilagent, tmp_path / "q.db3", "--http_allow",
                                 "127.0.0.1/32")
    key, beat = unique("il1apiallow"), unique("il1hbtallow")
    status, body, _ = call("127.0.0.2", "POST", f"{base}/api/events", event(key, "refused"))
    assert (status, body["status"], body["code"]) == (403, 403, "FORBIDDEN"), body
    assert "127.0.0.2" in body["message"] and body["message"].count(". ") == 0, body
    for path in (f"/api/heartbeats/{beat}", "/metrics", "/health?details", "/"):
        status, body, _ = call("127.0.0.2", "GET", f"{base}{path}")
        assert (status, body and body["code"]) == (403, "FORBIDDEN"), (path, body)
    status, body, _ = call("127.0.0.1", "POST", f"{base}/api/events", event(key, "taken"))
    assert status == 202 and body["status"] == "queued", body
    assert call("127.0.0.1", "GET", f"{base}/health?details")[0] == 200
    assert call("127.0.0.1", "GET", f"{base}/metrics")[0] == 200
    for source in ("127.0.0.1", "127.0.0.2"):
        assert call(source, "GET", f"{base}/health")[0] == 204
        wait_until(lambda s=source: call(s, "GET", f"{base}/ready/intake")[0] == 204,
                   what=f"/ready/intake from {source}")
    wait_until(lambda: sandbox.events(key), what="the admitted event at ilert")
    assert [e["body"]["summary"] for e in sandbox.events(key)] == ["taken"]
    masked = "*" * (len(beat) - 4) + beat[-4:]
    assert not [r for r in sandbox.requests() if r["integrationKey"] == masked]


def test_without_a_token_only_loopback_is_served_unless_opened_on_purpose(
        sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """Neither --http_token nor --http_allow, bound to 0.0.0.0: a client at this machine's
    network address gets 403 and 127.0.0.1 gets 202, and the start says so in one line; with
    a token every address may post with it; --http_allow 0.0.0.0/0,::/0 opens the intake to
    everyone without a token, as ilagent 0.9 was."""
    address = own_address()
    if address is None:
        pytest.skip("this machine has no address beside loopback")
    key = unique("il1apiloop")
    daemon, base = start_daemon(run_ilagent, tmp_path / "a.db3", "-vv", "--http_host",
                                "0.0.0.0")
    outside = f"http://{address}:{port_of(base)}"
    status, body, _ = call(address, "POST", f"{outside}/api/events", event(key, "refused"))
    assert (status, body.get("code")) == (403, "FORBIDDEN") and address in body["message"], body
    assert call(address, "GET", f"{outside}/health")[0] == 204
    assert call("127.0.0.1", "POST", f"{base}/api/events", event(key, "local"))[0] == 202
    [line] = [ln for ln in daemon.output().splitlines() if "HTTP access:" in ln]
    assert " INFO " in line and "127.0.0.0/8" in line and "::1" in line, line

    token = secret("tok-any-address")
    _daemon, base = start_daemon(run_ilagent, tmp_path / "b.db3", "--http_host", "0.0.0.0",
                                 "--http_token", token)
    outside = f"http://{address}:{port_of(base)}"
    assert call(address, "POST", f"{outside}/api/events", event(key, "with token"),
                token=token)[0] == 202
    assert call(address, "POST", f"{outside}/api/events", event(key, "no token"))[0] == 401

    _daemon, base = start_daemon(run_ilagent, tmp_path / "c.db3", "--http_host", "0.0.0.0",
                                 "--http_allow", "0.0.0.0/0,::/0")
    outside = f"http://{address}:{port_of(base)}"
    assert call(address, "POST", f"{outside}/api/events", event(key, "open"))[0] == 202
    wait_until(lambda: len(sandbox.events(key)) == 3, what="the three admitted events")
    assert sorted(e["body"]["summary"] for e in sandbox.events(key)) == [
        "local", "open", "with token"]


def test_two_tokens_both_work_and_an_explicit_allow_list_still_applies(
        sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """Two --http_token values are both valid; a wrong or missing one is 401; with
    --http_allow given as well both apply: 127.0.0.2 is refused 403 even with a valid token;
    /health?details follows the token."""
    first, second = secret("tok-first"), secret("tok-second")
    _daemon, base = start_daemon(run_ilagent, tmp_path / "q.db3", "--http_token", first,
                                 "--http_token", second, "--http_allow", "127.0.0.1/32")
    key = unique("il1apitwo")
    for token in (first, second):
        assert call("127.0.0.1", "POST", f"{base}/api/events", event(key, token[-6:]),
                    token=token)[0] == 202
    for token in ("wrong-token", None):
        status, body, headers = call("127.0.0.1", "POST", f"{base}/api/events",
                                     event(key, "x"), token=token)
        assert (status, body["code"], headers.get("WWW-Authenticate")) == (
            401, "UNAUTHORIZED", "Bearer"), body
    status, body, _ = call("127.0.0.2", "POST", f"{base}/api/events", event(key, "x"),
                           token=first)
    assert (status, body["code"]) == (403, "FORBIDDEN"), body
    assert call("127.0.0.1", "GET", f"{base}/health?details")[0] == 401
    assert call("127.0.0.1", "GET", f"{base}/health?details", token=second)[0] == 200
    wait_until(lambda: len(sandbox.events(key)) == 2, what="both events at ilert")


def test_a_token_file_is_read_again_within_20_s(sandbox: Sandbox, run_ilagent: Any,
                                                tmp_path: Path) -> None:
    """--http_token_file laid out as Kubernetes mounts a Secret: the file's token works; when
    the `..data` symlink is swapped to a new version, the new token works and the old one is
    refused within 20 s; a file rewritten in place is seen within 20 s as well."""
    old, new, third = secret("tok-old"), secret("tok-new"), secret("tok-third")
    mount = tmp_path / "secret"
    for version, token in (("..v1", old), ("..v2", new)):
        (mount / version).mkdir(parents=True)
        (mount / version / "http-token").write_text(f"# rotated by the operator\n{token}\n")
    (mount / "..data").symlink_to("..v1")
    (mount / "http-token").symlink_to("..data/http-token")
    _daemon, base = start_daemon(run_ilagent, tmp_path / "q.db3", "--http_token_file",
                                 str(mount / "http-token"))
    key = unique("il1apifile")

    def status_with(token: str) -> int:
        return call("127.0.0.1", "POST", f"{base}/api/events", event(key, token[-6:]),
                    token=token)[0]

    assert (status_with(old), status_with(new)) == (202, 401)
    (mount / "..data_tmp").symlink_to("..v2")
    os.replace(mount / "..data_tmp", mount / "..data")
    wait_until(lambda: status_with(new) == 202, timeout=20, interval=0.5,
               what="the swapped token to be accepted")
    assert status_with(old) == 401
    (mount / "..v2" / "http-token").write_text(f"{third}\n")
    wait_until(lambda: status_with(third) == 202, timeout=20, interval=0.5,
               what="the rewritten token to be accepted")
    assert status_with(new) == 401


def test_a_client_over_the_rate_limit_gets_429_with_retry_after(
        sandbox: Sandbox, run_ilagent: Any, tmp_path: Path) -> None:
    """--http_rate_limit 60: a client's burst of 10 is served, the next request is 429 with
    Retry-After (JSON in ilert's shape); the probes are not counted, and another address has
    a budget of its own."""
    _daemon, base = start_daemon(run_ilagent, tmp_path / "q.db3", "--http_rate_limit", "60")
    key = unique("il1apirate")
    statuses = [call("127.0.0.1", "POST", f"{base}/api/events", event(key, f"e{n}"))[0]
                for n in range(10)]
    assert statuses == [202] * 10
    status, body, headers = call("127.0.0.1", "POST", f"{base}/api/events", event(key, "over"))
    assert (status, body["status"], body["code"]) == (429, 429, "TOO_MANY_REQUESTS"), body
    assert 1 <= int(headers["Retry-After"]) <= 2, headers
    assert call("127.0.0.1", "GET", f"{base}/health")[0] == 204
    assert call("127.0.0.3", "POST", f"{base}/api/events", event(key, "other"))[0] == 202
