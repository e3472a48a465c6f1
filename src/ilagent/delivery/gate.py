"""Who may send to ilert right now: rate-limit blocks per key, single flight, the shared circuit.

An outage is one state here, not a timer per event:

* **A 429 blocks its key as a whole.** No request for that key until the block ends
  (``Retry-After``, else at least ``rate_limit_delay``, doubling while the 429s last, up to
  ``max_block``); then one probe.
* **Single flight until it succeeds.** A key with no success since its last failure (or since
  start) has at most one request in flight, so a failing key costs ilert one request at a
  time, never a burst of ``--max_in_flight``.
* **The circuit.** ``failures_to_open`` transient failures in a row (5xx, timeouts, network
  errors), from at least two lanes and with no answer in between, open it: then one probe every
  ``probe_interval`` seconds and nothing else. Any answer that is not a transient failure closes
  it and every waiting lane resumes at once.

Transitions of the circuit bump :attr:`Gate.epoch`, which ends the per-event backoff sleeps of
the delivery engine (a lane must not sleep a minute after ilert is back). Decisions are pure
functions of the injected clock; :meth:`Gate.wait` is the only coroutine.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from ilagent.ilert import Outcome

DEFAULT_FAILURES_TO_OPEN = 5
DEFAULT_PROBE_INTERVAL = 5.0
DEFAULT_MAX_BLOCK = 300.0
MAX_KEYS = 10_000  # above this many keys, idle ones are forgotten

CIRCUIT_OPEN = "circuit_open"
RATE_LIMITED = "rate_limited"
SINGLE_FLIGHT = "single_flight"


@dataclass
class _Key:
    in_flight: int = 0
    healthy: bool = False  # answered (not a transient failure, not a 429) since its last failure
    blocked_until: float = 0.0
    block: float = 0.0  # length of the last 429 block; doubles while they last


@dataclass(frozen=True)
class Admission:
    """May the request go now? If not, why, and until when at the latest to wait."""

    ok: bool
    reason: str = ""
    until: float | None = None  # None: until something changes
    probe: bool = False  # admitted as the circuit's probe: hand it back to settle() or cancel()


ADMITTED = Admission(ok=True)
PROBE = Admission(ok=True, probe=True)


class Gate:
    """The send permissions of one process, for every integration (or heartbeat) key."""

    def __init__(
        self,
        *,
        rate_limit_delay: float,
        failures_to_open: int = DEFAULT_FAILURES_TO_OPEN,
        probe_interval: float = DEFAULT_PROBE_INTERVAL,
        max_block: float = DEFAULT_MAX_BLOCK,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate_limit_delay = rate_limit_delay
        self._failures_to_open = max(1, failures_to_open)
        self._probe_interval = probe_interval
        self._max_block = max(max_block, rate_limit_delay)
        self._clock = clock
        # called with the circuit's new state (True: open) at every transition
        self.listeners: list[Callable[[bool], None]] = []
        self._keys: dict[str, _Key] = {}
        self.open = False
        self._failures = 0
        self._failing_lanes: set[Hashable] = set()
        self._next_probe = 0.0
        self._probing = False
        self.epoch = 0  # bumped when the circuit opens or closes
        self._changed: asyncio.Event | None = None
        self._waiters = 0

    # ---- decisions ---------------------------------------------------------------------------

    def blocked_until(self, key: str) -> float:
        """When the key's rate-limit block ends (in the past when it is not blocked)."""
        state = self._keys.get(key)
        return state.blocked_until if state is not None else 0.0

    def probe_in(self) -> float:
        """Seconds until the open circuit lets its next probe go (0 when it is closed, or the
        probe is due)."""
        return max(0.0, self._next_probe - self._clock()) if self.open else 0.0

    def blocked_keys(self) -> int:
        """How many keys are blocked by a 429 right now."""
        now = self._clock()
        return sum(1 for s in self._keys.values() if s.blocked_until > now)

    def admit(self, key: str) -> Admission:
        """Let one request for ``key`` go now (counted in flight), or say why not."""
        now = self._clock()
        state = self._key(key)
        if state.blocked_until > now:
            return Admission(False, RATE_LIMITED, state.blocked_until)
        if not state.healthy and state.in_flight > 0:
            return Admission(False, SINGLE_FLIGHT)
        if self.open:
            if self._probing:
                return Admission(False, CIRCUIT_OPEN)
            if now < self._next_probe:
                return Admission(False, CIRCUIT_OPEN, self._next_probe)
            self._probing = True
            state.in_flight += 1
            return PROBE
        state.in_flight += 1
        return ADMITTED

    def cancel(self, key: str, admission: Admission) -> None:
        """An admitted request that was not sent after all (pacing said wait)."""
        self._key(key).in_flight -= 1
        if admission.probe:
            self._probing = False
        self._notify()

    def settle(self, key: str, lane: Hashable, outcome: Outcome, *, admission: Admission,
               retry_after: float | None = None) -> float:
        """Record how an admitted request ended; return the key's block in seconds after a 429."""
        now = self._clock()
        state = self._key(key)
        state.in_flight -= 1
        if admission.probe:
            self._probing = False
        block = 0.0
        if outcome is Outcome.RATE_LIMITED:
            state.healthy = False
            if retry_after is not None:
                block = min(retry_after, self._max_block)
            else:
                block = min(max(self._rate_limit_delay, state.block * 2), self._max_block)
            state.block = block
            state.blocked_until = max(state.blocked_until, now + block)
        elif outcome is Outcome.RETRY:
            state.healthy = False
            self._failures += 1
            self._failing_lanes.add(lane)
            if self.open:
                if admission.probe:
                    self._next_probe = now + self._probe_interval
            elif (self._failures >= self._failures_to_open
                  and len(self._failing_lanes) >= 2):
                self._set_open(True, now)
        else:  # ilert answered: delivered, or a rejection of this one event
            state.healthy = True
            state.block = 0.0
            self._failures = 0
            self._failing_lanes.clear()
            if self.open:
                self._set_open(False, now)
        self._notify()
        return block

    def _set_open(self, value: bool, now: float) -> None:
        self.open = value
        self._probing = False
        self._next_probe = now + self._probe_interval
        self._failures = 0
        self._failing_lanes.clear()
        self.epoch += 1
        for listener in self.listeners:
            listener(value)

    def _key(self, key: str) -> _Key:
        state = self._keys.get(key)
        if state is None:
            if len(self._keys) >= MAX_KEYS:  # forget keys with nothing to remember
                now = self._clock()
                self._keys = {k: s for k, s in self._keys.items()
                              if s.in_flight or s.blocked_until > now or not s.healthy}
            state = self._keys[key] = _Key()
        return state

    # ---- waiting -----------------------------------------------------------------------------

    async def wait(self, admission: Admission) -> None:
        """Wait until the gate changed, or until ``admission.until``."""
        if self._changed is None:
            self._changed = asyncio.Event()
        changed = self._changed
        timeout = None if admission.until is None else max(0.0, admission.until - self._clock())
        self._waiters += 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout)
        finally:
            self._waiters -= 1

    def wake(self) -> None:
        """Wake every waiter to look again (a job may have been withdrawn)."""
        self._notify()

    def _notify(self) -> None:
        if self._waiters and self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()
