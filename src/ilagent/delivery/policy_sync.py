"""One escalation-policy level update against ilert: user, policy, level — as one attempt.

ilagent 0.9's three calls, in its order: find the user by e-mail, resolve the policy by routing
key, then put the user on the level (keeping the level's ``escalationTimeout``, 1 when the
policy has none there). The delivery engine runs an update like an event: paced in a bucket of
its own, retried with backoff on network errors, 429 and 5xx, dead-lettered when ilert says
something does not exist — with a reason naming what: ``user_not_found``,
``policy_not_found``, ``level_not_found``. Whether a 404 is ilert's "does not exist" is the
client's call (:mod:`ilagent.ilert`, reason ``not_found``): a 404 without ilert's error body is
a wrong ``--ilert_api_url`` or a proxy's page, and the update is retried, as an event is.

A refused API key (401, 403) is not the message's fault: the update is retried (held, not
dead-lettered, whatever ``--max_retries`` says), an ERROR is logged and
``ilagent_policy_api_key_refused`` is 1 until a call passes. Such an answer still shows that
ilert is up, so it never opens the circuit that would hold back events.

Lookups are cached for :data:`~ilagent.config.POLICY_CACHE_TTL` seconds (60), so a burst of
shift changes costs one request each, not three; a 404 on the update drops the policy from the
cache. Two updates of one level never run at the same time, whatever routing keys led there;
their order is the lane's (:func:`ilagent.delivery.lanes.policy_lane`: one lane per level number).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ilagent.config import POLICY_CACHE_TTL
from ilagent.ilert import NOT_FOUND, IlertClient, Outcome, Result
from ilagent.mapping.policy import PolicyUpdate
from ilagent.metrics import Metrics

logger = logging.getLogger(__name__)

DEFAULT_ESCALATION_TIMEOUT = 1  # ilagent 0.9's value when the level has none
KEY_REFUSED = "api_key_refused"  # a held update: retried, never dead-lettered


class PolicySync:
    """Applies :class:`~ilagent.mapping.policy.PolicyUpdate` s through an :class:`IlertClient`."""

    def __init__(self, *, client: IlertClient, metrics: Metrics, ttl: float = POLICY_CACHE_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._metrics = metrics
        self._ttl = ttl
        self._clock = clock
        # by e-mail / routing key: (when looked up, (id, ilert's answer))
        self._users: dict[str, tuple[float, tuple[int, dict[str, Any]]]] = {}
        self._policies: dict[str, tuple[float, tuple[int, dict[str, Any]]]] = {}
        self._levels: dict[tuple[int, int], asyncio.Lock] = {}

    async def apply(self, update: PolicyUpdate) -> Result:
        """One attempt of the whole update; the result of the call that decided it."""
        user = await self._user(update.email)
        if isinstance(user, Result):
            return user
        cached = update.routing_key in self._policies
        policy = await self._policy(update.routing_key)
        if isinstance(policy, Result):
            return policy
        policy_id, rules = policy
        if update.level >= len(rules) and cached:  # maybe stale: look again
            self._policies.pop(update.routing_key, None)
            cached = False
            policy = await self._policy(update.routing_key)
            if isinstance(policy, Result):
                return policy
            policy_id, rules = policy
        if update.level >= len(rules):
            return _not_found("level_not_found", f"escalation policy {policy_id} (routing key "
                              f"{update.routing_key!r}) has no level {update.level}")
        rule = rules[update.level] if isinstance(rules[update.level], dict) else {}
        timeout = rule.get("escalationTimeout")
        if not isinstance(timeout, int) or isinstance(timeout, bool):
            timeout = DEFAULT_ESCALATION_TIMEOUT
        lock = self._levels.setdefault((policy_id, update.level), asyncio.Lock())
        async with lock:
            result, _answer = await self._client.update_level(
                policy_id, update.level, {"escalationTimeout": timeout, "users": [{"id": user}]})
        if result.reason == NOT_FOUND:  # ilert's own 404: a wrong URL's is retried as is
            self._policies.pop(update.routing_key, None)
            if cached:  # the policy may have changed since it was looked up: look again
                return Result(Outcome.RETRY, 404, "the cached policy is gone; resolving again")
            return _not_found("level_not_found", f"escalation policy {policy_id} has no level "
                              f"{update.level} any more ({result.detail})")
        if result.outcome is Outcome.DELIVERED:
            logger.info("escalation policy %s level %d: now %s", policy_id, update.level,
                        update.email)
        return self._checked(result)

    async def _user(self, email: str) -> int | Result:
        found = await self._looked_up(
            self._users, email.lower(), lambda: self._client.find_user(email),
            reason="user_not_found", missing=f"no ilert user with e-mail {email}",
            answer_of=email)
        return found if isinstance(found, Result) else found[0]

    async def _policy(self, routing_key: str) -> tuple[int, list[Any]] | Result:
        found = await self._looked_up(
            self._policies, routing_key, lambda: self._client.resolve_policy(routing_key),
            reason="policy_not_found",
            missing=f"no escalation policy for routing key {routing_key!r}",
            answer_of=f"routing key {routing_key!r}")
        if isinstance(found, Result):
            return found
        rules = found[1].get("escalationRules")
        return found[0], rules if isinstance(rules, list) else []

    async def _looked_up(
        self, cache: dict[str, tuple[float, tuple[int, dict[str, Any]]]], key: str,
        call: Callable[[], Awaitable[tuple[Result, object]]], *, reason: str, missing: str,
        answer_of: str,
    ) -> tuple[int, dict[str, Any]] | Result:
        """A user or policy by ``key``: cached for the TTL, else asked of ilert; its id and
        ilert's answer, or the result that decides the attempt (a 404 names what is missing)."""
        cached = cache.get(key)
        if cached is not None and self._clock() - cached[0] < self._ttl:
            return cached[1]
        result, answer = await call()
        if result.reason == NOT_FOUND:
            return _not_found(reason, missing)
        if result.outcome is not Outcome.DELIVERED:
            return self._checked(result)
        found_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(answer, dict) or not isinstance(found_id, int) \
                or isinstance(found_id, bool):
            return _not_found(reason, f"ilert's answer for {answer_of} has no id")
        cache[key] = (self._clock(), (found_id, answer))
        self._checked(result)
        return found_id, answer

    def _checked(self, result: Result) -> Result:
        """A refused API key holds the update (retried) instead of dead-lettering it."""
        refused = result.status in (401, 403)
        self._metrics.policy_key_refused.set(1 if refused else 0)
        if not refused:
            return result
        logger.error("ilert refuses the API key for policy sync (HTTP %s): set ILERT_API_KEY "
                     "to a user API key that may edit escalation policies; the update waits",
                     result.status)
        return Result(Outcome.RETRY, result.status, "the API key is refused",
                      reason=KEY_REFUSED)


def _not_found(reason: str, detail: str) -> Result:
    return Result(Outcome.REJECTED, 404, detail, reason=reason)
