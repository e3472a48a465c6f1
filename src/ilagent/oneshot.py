"""The ``event`` and ``heartbeat`` subcommands: one delivery, a clear verdict, an honest exit code.

Unlike ilagent 0.9 (exit 0 whatever happened), the exit code says whether ilert accepted:
0 on acceptance, 1 when ilert refused or could not be reached, with a one-line reason on stderr.
Transient failures (network, 429, 5xx) are retried ``--retries`` times with backoff first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from ilagent.backoff import RetryPolicy
from ilagent.config import ConfigError
from ilagent.events import EventError, validate_event
from ilagent.ilert import IlertClient, Outcome, Result
from ilagent.logs import mask

ONESHOT_POLICY = RetryPolicy(initial_delay=0.5, max_delay=4.0, rate_limit_delay=10.0)


def _key(args: argparse.Namespace) -> str:
    key = args.integration_key or os.environ.get("ILERT_INTEGRATION_KEY")
    if not key:
        raise ConfigError("an integration key is required: give -k/--integration_key "
                          "or set ILERT_INTEGRATION_KEY")
    return str(key)


def build_event(args: argparse.Namespace) -> dict[str, Any]:
    """The event body the flags describe (validated like ilert validates it)."""
    body: dict[str, Any] = {
        "integrationKey": _key(args), "eventType": args.event_type, "summary": args.summary,
        "alertKey": args.alert_key, "priority": args.priority, "details": args.details,
    }
    if args.image:
        body["images"] = [{"src": args.image}]
    if args.link:
        body["links"] = [{"href": args.link, "text": args.link}]
    try:
        return validate_event(body)
    except EventError as exc:
        raise ConfigError(str(exc)) from None


async def run(args: argparse.Namespace) -> int:
    """Send the event or ping; return the exit code."""
    if args.command == "event":
        event = build_event(args)
        key = event["integrationKey"]
    else:
        key = _key(args)
    async with IlertClient(api_url=args.ilert_api_url, beat_url=args.ilert_beat_url,
                           timeout=args.ilert_timeout) as client:
        attempt = 0
        while True:
            attempt += 1
            if args.command == "event":
                result = await client.post_event("/events", event)
            else:
                result = await client.ping_heartbeat(key)
            if not result.outcome.retriable or attempt > args.retries:
                break
            delay = (ONESHOT_POLICY.rate_limited_delay(attempt, result.retry_after)
                     if result.outcome is Outcome.RATE_LIMITED else ONESHOT_POLICY.delay(attempt))
            await asyncio.sleep(delay)
    return _report(args.command, result, key)


def _report(command: str, result: Result, key: str) -> int:
    what = "event" if command == "event" else "heartbeat ping"
    if result.outcome is Outcome.DELIVERED:
        print(f"ilert accepted the {what} (HTTP {result.status})")
        return 0
    reason = (f"HTTP {result.status}" if result.status is not None else "ilert unreachable")
    detail = f": {result.detail.strip()}" if result.detail.strip() else ""
    print(mask(f"ilagent {command}: error: {what} not delivered, {reason}{detail}", key),
          file=sys.stderr)
    return 1
