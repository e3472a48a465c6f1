"""Helpers of the HTTP daemon tests: start a ``-p`` daemon, post events, read its metrics."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.parse
from collections.abc import Callable
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import aiohttp

from helpers import DaemonProcess, http, status_or_none, wait_until

FAST = [
    "--retry_initial_delay",
    "0.1",
    "--retry_max_delay",
    "0.5",
    "--rate_limit_per_key",
    "0",
    "--rate_limit_total",
    "0",
]


def start_daemon(
    run_ilagent: Callable[..., DaemonProcess],
    db: Path,
    *extra: str,
    port: int | None = None,
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], object] | None = None,
) -> tuple[DaemonProcess, str]:
    """A daemon serving HTTP on 127.0.0.1 with its queue in ``db``, once it answers /health.

    Its per-address rate limit is off (the tests post from one address, as fast as they can),
    unless ``extra`` sets ``--http_rate_limit`` (the last value given wins)."""
    import broker

    port = port or broker.free_port()
    daemon = run_ilagent(
        "daemon", "-p", str(port), "--http_host", "127.0.0.1", "--http_rate_limit", "0",
        "-f", str(db), *extra, env=env, preexec_fn=preexec_fn,
    )
    base = f"http://127.0.0.1:{port}"
    wait_until(
        lambda: status_or_none("GET", f"{base}/health") == 204 or not daemon.alive(),
        timeout=30,
        what="the daemon to serve HTTP",
    )
    assert daemon.alive(), daemon.output()
    return daemon, base


def metrics(base: str, headers: dict[str, str] | None = None) -> dict[str, float]:
    """Every sample of ``/metrics`` by its full name with labels."""
    status, text = http("GET", f"{base}/metrics", headers=headers)
    assert status == 200, text
    samples = {}
    for line in str(text).splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def metric(base: str, pattern: str) -> float:
    """The sum of the samples whose name with labels matches ``pattern`` (a regex)."""
    return sum(v for k, v in metrics(base).items() if re.fullmatch(pattern, k))


def event(key: str, summary: str, alert: str | None = None, **more: Any) -> dict[str, Any]:
    body = {"integrationKey": key, "eventType": "ALERT", "summary": summary, **more}
    if alert is not None:
        body["alertKey"] = alert
    return body


async def post_all(
    url: str,
    bodies: list[dict[str, Any]],
    *,
    connections: int = 50,
) -> list[tuple[int, Any]]:
    """POST every body with ``connections`` concurrent clients; (status, JSON) in body order."""
    answers: list[tuple[int, Any]] = [(0, None)] * len(bodies)
    todo = iter(range(len(bodies)))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as s:

        async def client() -> None:
            for i in todo:
                async with s.post(url, json=bodies[i]) as response:
                    answers[i] = (response.status, await response.json())

        await asyncio.gather(*(client() for _ in range(connections)))
    return answers


def call(source: str, method: str, url: str, body: Any = None,
         token: str | None = None) -> tuple[int, Any, dict[str, str]]:
    """One request from the local address ``source`` (every 127.0.0.0/8 address is this
    machine's): status, JSON body (None without one) and headers."""
    parts = urllib.parse.urlsplit(url)
    connection = HTTPConnection(parts.hostname or "", parts.port, timeout=30,
                                            source_address=(source, 0))
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(method, path, body=None if body is None else json.dumps(body),
                           headers=headers)
        response = connection.getresponse()
        raw = response.read()
        json_body = "json" in response.getheader("Content-Type", "")
        return response.status, json.loads(raw) if raw and json_body else None, dict(
            response.getheaders())
    finally:
        connection.close()
