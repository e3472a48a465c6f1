"""The ``event`` and ``heartbeat`` subcommands: one delivery, a clear verdict, an honest exit code.

Unlike ilagent 0.9 (exit 0 whatever happened), the exit code says whether ilert accepted:
0 on acceptance, 1 when ilert refused or could not be reached, with a one-line reason on stderr.
Transient failures (network, 429, 5xx) are retried ``--retries`` times with backoff first.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from typing import Any

from ilagent.commands.common import (
    Parser,
    Subparsers,
    add_global_options,
    add_ilert_options,
    check_url,
    positive_int,
)
from ilagent.config import RetryPolicy
from ilagent.delivery import backoff
from ilagent.errors import ConfigError, EventError
from ilagent.events import encode_event, validate_event
from ilagent.ilert import IlertClient, Outcome, Result
from ilagent.logs import hide_secrets, mask
from ilagent.secret_options import register_secrets

ONESHOT_POLICY = RetryPolicy(initial_delay=0.5, max_delay=4.0, rate_limit_delay=10.0)


def add_parsers(sub: Subparsers) -> dict[str, Parser]:
    """Add ``event`` and ``heartbeat`` and their options."""
    event: Parser = sub.add_parser(
        "event", help="send one event to ilert",
        description="Send one event to ilert; exit 0 when ilert accepted it, 1 when not.",
        epilog="example: ilagent event -k il1api… -t ALERT -s 'Door 7 open' -o high\n"
               "         ilagent event -k il1api… -t RESOLVE -i <the alert key it printed>")
    add_global_options(event)
    event.add_argument("-k", "--integration_key",
                       help="integration key (default: env ILERT_INTEGRATION_KEY)")
    event.add_argument("-t", "--event_type", required=True, type=str.upper,
                       choices=("ALERT", "ACCEPT", "RESOLVE", "COMMENT"),
                       help="ALERT opens an alert, ACCEPT and RESOLVE change it (any case)")
    event.add_argument("-s", "--summary", help="summary (required for ALERT)")
    event.add_argument("-i", "--alert_key",
                       help="alert key; for ALERT without one, a new key is made and printed")
    event.add_argument("-o", "--priority", type=str.upper, choices=("LOW", "HIGH"),
                       help="HIGH or LOW (any case; default: the alert source's)")
    event.add_argument("-d", "--details", help="details")
    event.add_argument("-g", "--image", help="image URL")
    event.add_argument("-l", "--link", help="link URL")
    event.add_argument("--retries", type=positive_int, default=2,
                       help="retries on network errors, 429 and 5xx; 0 = none "
                            "(default %(default)s)")
    add_ilert_options(event)

    heartbeat: Parser = sub.add_parser(
        "heartbeat", help="send one heartbeat ping to ilert",
        description="Ping one heartbeat at ilert; exit 0 when ilert took it, 1 when not.",
        epilog="example: ilagent heartbeat -k il1hbt…")
    add_global_options(heartbeat)
    heartbeat.add_argument("-k", "--integration_key",
                           help="heartbeat key (default: env ILERT_INTEGRATION_KEY)")
    heartbeat.add_argument("--retries", type=positive_int, default=2,
                           help="retries on network errors, 429 and 5xx; 0 = none "
                                "(default %(default)s)")
    add_ilert_options(heartbeat)
    return {"event": event, "heartbeat": heartbeat}


def run(args: argparse.Namespace) -> int:
    """Send the event or the ping; return the exit code."""
    return asyncio.run(send(args))


def _key(args: argparse.Namespace) -> str:
    key = args.integration_key
    if not key:
        raise ConfigError("an integration key is required: give -k/--integration_key "
                          "or set ILERT_INTEGRATION_KEY")
    return str(key)


def build_event(args: argparse.Namespace) -> tuple[str, bytes]:
    """The integration key and the serialised event the flags describe (validated as ilert
    validates it)."""
    if args.event_type == "ALERT" and not args.summary:
        raise ConfigError("an ALERT needs a summary: give -s/--summary")
    if args.event_type == "ALERT" and not args.alert_key:
        # ilert would make one up and the user could never resolve the alert: make it here
        args.alert_key = args.made_alert_key = f"ilagent-{uuid.uuid4().hex[:12]}"
    body: dict[str, Any] = {
        "integrationKey": _key(args), "eventType": args.event_type, "summary": args.summary,
        "alertKey": args.alert_key, "priority": args.priority, "details": args.details,
    }
    if args.image:
        body["images"] = [{"src": args.image}]
    if args.link:
        body["links"] = [{"href": args.link, "text": args.link}]
    try:
        event = validate_event(body)
        return str(event["integrationKey"]), encode_event(event)
    except EventError as exc:  # a missing summary, or a lone surrogate from the shell
        raise ConfigError(str(exc)) from None


def prepare(args: argparse.Namespace) -> tuple[str, bytes]:
    """What the flags ask to send, checked (``ConfigError``): the key, and the serialised event
    (empty for a heartbeat ping)."""
    if args.command == "event":
        key, body = build_event(args)
    else:
        key, body = _key(args), b""
    check_url(args.ilert_api_url, "--ilert_api_url")
    check_url(args.ilert_beat_url, "--ilert_beat_url")
    register_secrets([("integration_key", key)])  # masked since start; now warned of if short
    return key, body


async def send(args: argparse.Namespace) -> int:
    """Send the event or ping (retrying transient failures); return the exit code."""
    key, body = prepare(args)
    then = (f"It is tried {args.retries} more time(s), then given up" if args.retries
            else "It is not retried (--retries 0)")
    async with IlertClient(api_url=args.ilert_api_url, beat_url=args.ilert_beat_url,
                           timeout=args.ilert_timeout, wrong_url_then=then) as client:
        attempt = 0
        while True:
            attempt += 1
            if args.command == "event":
                result = await client.post_event("/events", body)
            else:
                result = await client.ping_heartbeat(key)
            if not result.outcome.retriable or attempt > args.retries:
                break
            delay = (backoff.rate_limited_delay(ONESHOT_POLICY, attempt, result.retry_after)
                     if result.outcome is Outcome.RATE_LIMITED
                     else backoff.delay(ONESHOT_POLICY, attempt))
            await asyncio.sleep(delay)
    return _report(args.command, result, key, attempts=attempt, timeout=args.ilert_timeout,
                   alert_key=getattr(args, "made_alert_key", None))


def _report(command: str, result: Result, key: str, *, attempts: int, timeout: float,
            alert_key: str | None) -> int:
    what = "event" if command == "event" else "heartbeat ping"
    if result.outcome is Outcome.DELIVERED:
        made = f"; alert key {alert_key} (use -i {alert_key} to accept or resolve it)" \
            if alert_key else ""
        print(f"ilert accepted the {what} (HTTP {result.status}){made}")
        return 0
    if result.status is not None:
        reason = f"ilert answered HTTP {result.status}"
    else:
        reason = f"ilert could not be reached (no answer within {timeout:g} s or no connection)"
    detail = f": {result.detail.strip()}" if result.detail.strip() else ""
    tries = f" after {attempts} attempt{'s' if attempts > 1 else ''}"
    print(hide_secrets(mask(f"ilagent {command}: error: {what} not delivered{tries}, {reason}"
                            f"{detail}", key)), file=sys.stderr)
    return 1
