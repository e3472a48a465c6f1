"""What may answer before the sandbox handles a request: scripted faults and ilert's rate limits.

Both are pure bookkeeping over a caller-supplied monotonic ``now``, so tests can drive them
without sleeping. Faults live in memory only: they are a test script, not state worth keeping.

A fault, as posted to ``POST /sandbox/faults``::

    {"status": 503,            # answer with this status (null: no status, latency only)
     "latency_ms": 0,          # wait this long first
     "duration_s": null,       # expire after this many seconds (null: until cleared)
     "integration_key": null,  # only requests with this integration (or heartbeat) key
     "method": null,           # only requests with this HTTP method (any case; HEAD is not GET)
     "path": null,             # only requests whose path matches this glob (see below)
     "count": null,            # only the next N matching requests
     "retry_after": null}      # Retry-After header on the fault's answers

Every scope given must match (they combine with AND); a scope left null matches anything.
``path`` is matched against the request's percent-decoded path without its query string, as a
shell-style glob (:func:`fnmatch.fnmatchcase`): without ``*``, ``?`` or ``[`` it is an exact
path; ``*`` matches any run of characters, ``/`` included, so ``/api/escalation-policies/*``
is a prefix and ``/api/escalation-policies/*/levels/*`` picks out the level updates only.
A request the scopes exclude is handled normally and does not use up the fault's ``count``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .records import mask

FAULT_FIELDS = (
    "status", "latency_ms", "duration_s", "integration_key", "method", "path", "count",
    "retry_after",
)  # fmt: skip
MAX_LATENCY_MS = 600_000
RATE_WINDOW_S = 60.0
_METHOD = re.compile(r"[A-Za-z]+")


class FaultError(ValueError):
    """A fault body that cannot be scripted; the message says which field and why."""


@dataclass(frozen=True)
class Target:
    """What faults are matched against: a request's method, path (decoded, no query) and key."""

    method: str
    path: str
    integration_key: str | None = None


@dataclass(frozen=True)
class FaultSpec:
    """A validated fault, before it is scheduled."""

    status: int | None = None
    latency_ms: int = 0
    duration_s: float | None = None
    integration_key: str | None = None
    method: str | None = None
    path: str | None = None
    count: int | None = None
    retry_after: str | None = None

    def matches(self, target: Target) -> bool:
        """Whether every scope of the fault admits ``target``."""
        return (
            (self.integration_key is None or self.integration_key == target.integration_key)
            and (self.method is None or self.method == target.method)
            and (self.path is None or fnmatch.fnmatchcase(target.path, self.path))
        )


@dataclass
class Fault:
    """A scheduled fault; ``remaining`` counts down when ``count`` was given."""

    id: int
    spec: FaultSpec
    expires_at: float | None
    remaining: int | None

    def live(self, now: float) -> bool:
        """Whether the fault still applies at ``now``."""
        not_expired = self.expires_at is None or now < self.expires_at
        return not_expired and (self.remaining is None or self.remaining > 0)

    def to_json(self, now: float) -> dict[str, Any]:
        """The fault as ``GET /sandbox/faults`` shows it (its key masked)."""
        spec = self.spec
        return {
            "id": self.id,
            "status": spec.status,
            "latency_ms": spec.latency_ms,
            "duration_s": spec.duration_s,
            "integration_key": mask(spec.integration_key),
            "method": spec.method,
            "path": spec.path,
            "count": spec.count,
            "retry_after": spec.retry_after,
            "remaining": self.remaining,
            "expires_in_s": None if self.expires_at is None else max(0.0, self.expires_at - now),
        }


def parse_fault(body: object) -> FaultSpec:
    """Validate a fault body; raises :class:`FaultError`. Unknown fields are refused (typos)."""
    if not isinstance(body, Mapping):
        raise FaultError("the body must be a JSON object")
    unknown = sorted(set(body) - set(FAULT_FIELDS))
    if unknown:
        raise FaultError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(FAULT_FIELDS)}")
    status = _optional_int(body, "status", low=100, high=599)
    latency_ms = _optional_int(body, "latency_ms", low=0, high=MAX_LATENCY_MS) or 0
    count = _optional_int(body, "count", low=1, high=None)
    duration = body.get("duration_s")
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, int | float) or duration <= 0
    ):
        raise FaultError("'duration_s' must be a positive number or null")
    for name in ("integration_key", "method", "path", "retry_after"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise FaultError(f"'{name}' must be a string or null")
    method = body.get("method")
    if method is not None and not _METHOD.fullmatch(method):
        raise FaultError("'method' must be an HTTP method such as PUT")
    path = body.get("path")
    if path is not None and not path.startswith(("/", "*")):
        raise FaultError("'path' must start with '/' (or be a glob starting with '*')")
    if status is None and latency_ms == 0:
        raise FaultError("a fault needs a 'status', a 'latency_ms' or both")
    return FaultSpec(
        status=status,
        latency_ms=latency_ms,
        duration_s=None if duration is None else float(duration),
        integration_key=body.get("integration_key"),
        method=None if method is None else method.upper(),
        path=path,
        count=count,
        retry_after=body.get("retry_after"),
    )


def _optional_int(body: Mapping[str, Any], name: str, *, low: int, high: int | None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise FaultError(f"'{name}' must be an integer >= {low} or null")
    if high is not None and value > high:
        raise FaultError(f"'{name}' must be at most {high}")
    return value


class FaultBook:
    """The scheduled faults, oldest first; the oldest live match is the one applied."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(self, spec: FaultSpec, *, now: float) -> Fault:
        """Schedule a fault from ``now`` on."""
        expires_at = None if spec.duration_s is None else now + spec.duration_s
        fault = Fault(self._next_id, spec, expires_at, spec.count)
        self._next_id += 1
        self._faults.append(fault)
        return fault

    def take(self, target: Target, *, now: float) -> Fault | None:
        """The fault that applies to the request ``target``, counting it; None if none does."""
        if not self._faults:
            return None
        self._faults = [fault for fault in self._faults if fault.live(now)]
        for fault in self._faults:
            if fault.spec.matches(target):
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
        return None

    def list(self, *, now: float) -> list[Fault]:
        """The faults that still apply."""
        self._faults = [fault for fault in self._faults if fault.live(now)]
        return list(self._faults)

    def clear(self) -> int:
        """Drop every fault; return how many there were."""
        dropped = len(self._faults)
        self._faults.clear()
        return dropped


class FixedWindowLimiter:
    """At most ``limit`` hits per key in each window; a key's window opens at its first hit.

    ilert counts in fixed one-minute windows and answers 429 until the next one starts. Opening
    the window at a key's first hit (rather than on the clock minute) keeps that behaviour while
    making "the 51st event in the window" deterministic for tests.
    """

    def __init__(self, limit: int, *, window_s: float = RATE_WINDOW_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._windows: dict[str, tuple[float, int]] = {}

    def allow(self, key: str, *, now: float) -> bool:
        """Count a hit for ``key``; False when it is over the limit of its window."""
        start, hits = self._windows.get(key, (now, 0))
        if now - start >= self.window_s:
            start, hits = now, 0
        hits += 1
        self._windows[key] = (start, hits)
        if len(self._windows) > 10_000:
            self._forget_closed(now)
        return hits <= self.limit

    def clear(self) -> None:
        """Forget every window."""
        self._windows.clear()

    def _forget_closed(self, now: float) -> None:
        self._windows = {
            key: window for key, window in self._windows.items() if now - window[0] < self.window_s
        }
