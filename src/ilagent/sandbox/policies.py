"""The sandbox's users, escalation policies and accepted API keys, and ilert's three policy calls.

:class:`PolicyBook` answers the three calls ilagent 0.9's policy sync makes to ilert, with
ilert's shapes:

* :meth:`~PolicyBook.find_user`: ``POST /api/users/search-email`` ``{"email"}`` → the ``User``
  ``{id, firstName, lastName, email}``; e-mails are compared trimmed and case-insensitively.
* :meth:`~PolicyBook.resolve`: ``GET /api/escalation-policies/resolve?routing-key=`` → the
  ``EscalationPolicy`` ``{id, name, routingKey, escalationRules}``, each rule
  ``{escalationTimeout, users: [User], schedules: [], teams: []}``. As ilert allows, the key may
  be an ordered comma-separated list: the first key that names a policy wins.
* :meth:`~PolicyBook.set_level`: ``PUT /api/escalation-policies/{id}/levels/{level}`` replaces
  an existing level (zero-based) and answers the new ``EscalationRule``.

"Not found" is a :class:`~.seed.Refusal` 404 ``NOT_FOUND`` whose message names what was not
found. State lives in memory only: :meth:`~PolicyBook.reset` (and a restart) go back to the
startup seed. Every policy carries ``rev``, a counter that grows with each change, so a page
can tell a newer copy from a stale one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .seed import INVALID_FIELD, Refusal, Seed, SeedLevel, SeedPolicy, SeedUser, UserRef

NOT_FOUND = "NOT_FOUND"
SEED_CONFLICT = "SEED_CONFLICT"
INVALID_SEED = "INVALID_SEED"


@dataclass(frozen=True)
class User:
    """A sandbox user; shown as a subset of ilert's ``User``."""

    id: int
    email: str
    first_name: str
    last_name: str

    def to_json(self) -> dict[str, Any]:
        """ilert's ``User`` fields the sandbox keeps."""
        return {
            "id": self.id,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "email": self.email,
        }


@dataclass
class Level:
    """One escalation level: its timeout in minutes and the ids of its users, in order."""

    escalation_timeout: int
    user_ids: list[int]


@dataclass
class Policy:
    """An escalation policy; ``rev`` and ``updated_at`` tell when a level last changed."""

    id: int
    name: str
    routing_key: str | None
    levels: list[Level]
    rev: int
    updated_at: str | None = None


@dataclass(frozen=True)
class LevelChange:
    """A level update that landed: ilert's answer (the new rule) and the policy as it is now."""

    rule: dict[str, Any]
    policy: dict[str, Any]


@dataclass(frozen=True)
class Seeded:
    """What one seed added, as the inspection routes show it."""

    users: list[dict[str, Any]] = field(default_factory=list)
    policies: list[dict[str, Any]] = field(default_factory=list)
    api_keys: int = 0


def email_key(email: str) -> str:
    """The form e-mails are compared in: trimmed and case-insensitive."""
    return email.strip().casefold()


class PolicyBook:
    """Users, policies and API keys; starts from (and resets to) ``base``."""

    def __init__(self, base: Seed | None = None, *, clock: Callable[[], str]) -> None:
        """Raises :class:`~.seed.Refusal` when ``base`` cannot be applied to an empty book."""
        self.base = base or Seed()
        self._clock = clock
        self._rev = 0  # never reset: a page holding an old copy must still see it as old
        self._users: dict[int, User] = {}
        self._by_email: dict[str, User] = {}
        self._policies: dict[int, Policy] = {}
        self._by_routing_key: dict[str, Policy] = {}
        self._api_keys: set[str] = set()
        self.apply(self.base)

    def reset(self) -> None:
        """Forget every change and every later seed: back to the startup seed."""
        for table in (self._users, self._by_email, self._policies, self._by_routing_key):
            table.clear()
        self._api_keys.clear()
        self.apply(self.base)

    # -- seeding ----------------------------------------------------------------------------

    def apply(self, seed: Seed) -> Seeded:
        """Add a seed, all or nothing; 409 ``SEED_CONFLICT`` for a taken id, e-mail or routing
        key, 400 ``INVALID_SEED`` for a level naming a user that is not there."""
        users = self._new_users(seed.users)
        by_email = {**self._by_email, **{email_key(user.email): user for user in users}}
        by_id = {**self._users, **{user.id: user for user in users}}
        policies = self._new_policies(seed.policies, by_id=by_id, by_email=by_email)
        for user in users:
            self._users[user.id] = user
            self._by_email[email_key(user.email)] = user
        for policy in policies:
            self._policies[policy.id] = policy
            if policy.routing_key is not None:
                self._by_routing_key[policy.routing_key] = policy
        self._api_keys.update(seed.api_keys)
        return Seeded(
            users=[user.to_json() for user in users],
            policies=[self.policy_json(policy) for policy in policies],
            api_keys=len(seed.api_keys),
        )

    def _new_users(self, seeded: Sequence[SeedUser]) -> list[User]:
        taken_ids, taken_emails = set(self._users), set(self._by_email)
        users = []
        for user in seeded:
            user_id = user.id if user.id is not None else _next_id(taken_ids, seeded)
            if user_id in taken_ids:
                raise _conflict(f"user id {user_id} is taken")
            if email_key(user.email) in taken_emails:
                raise _conflict(f"a user with e-mail {user.email} exists")
            taken_ids.add(user_id)
            taken_emails.add(email_key(user.email))
            users.append(User(user_id, user.email, user.first_name, user.last_name))
        return users

    def _new_policies(
        self, seeded: Sequence[SeedPolicy], *, by_id: dict[int, User], by_email: dict[str, User]
    ) -> list[Policy]:
        taken_ids, taken_keys = set(self._policies), set(self._by_routing_key)
        policies = []
        for policy in seeded:
            policy_id = policy.id if policy.id is not None else _next_id(taken_ids, seeded)
            if policy_id in taken_ids:
                raise _conflict(f"escalation policy id {policy_id} is taken")
            if policy.routing_key in taken_keys:
                raise _conflict(f"routing key {policy.routing_key!r} is taken")
            taken_ids.add(policy_id)
            if policy.routing_key is not None:
                taken_keys.add(policy.routing_key)
            levels = [
                Level(
                    level.escalation_timeout, [_find(ref, by_id, by_email) for ref in level.users]
                )
                for level in policy.levels
            ]
            name = policy.name if policy.name is not None else f"Policy {policy_id}"
            policies.append(Policy(policy_id, name, policy.routing_key, levels, self._next_rev()))
        return policies

    # -- ilert's calls ----------------------------------------------------------------------

    @property
    def has_api_keys(self) -> bool:
        """Whether any API key is accepted at all."""
        return bool(self._api_keys)

    def accepts(self, api_key: str) -> bool:
        """Whether ``api_key`` (from ``Authorization: Bearer <key>``) is a seeded key."""
        return api_key in self._api_keys

    def find_user(self, email: str) -> dict[str, Any]:
        """The user with this e-mail; 404 ``NOT_FOUND`` if there is none."""
        user = self._by_email.get(email_key(email))
        if user is None:
            raise Refusal(404, NOT_FOUND, f"no user with e-mail {email}")
        return user.to_json()

    def resolve(self, routing_key: str) -> dict[str, Any]:
        """The policy of the first of the comma-separated keys that names one; else 404."""
        for key in routing_key.split(","):
            policy = self._by_routing_key.get(key.strip())
            if policy is not None:
                return self.policy_json(policy, inspect=False)
        raise Refusal(404, NOT_FOUND, f"no escalation policy with routing key {routing_key!r}")

    def set_level(self, policy_id: int, index: int, level: SeedLevel) -> LevelChange:
        """Replace level ``index`` of a policy; 404 for no such policy or level, 400 for a user
        that does not exist."""
        policy = self._policies.get(policy_id)
        if policy is None:
            raise Refusal(404, NOT_FOUND, f"no escalation policy with id {policy_id}")
        if not 0 <= index < len(policy.levels):
            raise Refusal(
                404,
                NOT_FOUND,
                f"escalation policy {policy_id} has no level {index}"
                f" (it has {len(policy.levels)}, numbered from 0)",
            )
        user_ids = []
        for n, ref in enumerate(level.users):
            if ref.id not in self._users:
                raise Refusal(400, INVALID_FIELD, f"'users[{n}].id': no user with id {ref.id}")
            user_ids.append(ref.id)
        new = Level(level.escalation_timeout, user_ids)
        policy.levels[index] = new
        policy.rev = self._next_rev()
        policy.updated_at = self._clock()
        return LevelChange(self._rule_json(new), self.policy_json(policy))

    # -- inspection -------------------------------------------------------------------------

    def users(self) -> list[dict[str, Any]]:
        """Every user, by id."""
        return [self._users[user_id].to_json() for user_id in sorted(self._users)]

    def policies(self, *, routing_key: str | None = None) -> list[dict[str, Any]]:
        """Every policy by id (or the one with exactly ``routing_key``), with ``rev``."""
        chosen = sorted(self._policies.values(), key=lambda policy: policy.id)
        if routing_key is not None:
            chosen = [policy for policy in chosen if policy.routing_key == routing_key]
        return [self.policy_json(policy) for policy in chosen]

    def policy_json(self, policy: Policy, *, inspect: bool = True) -> dict[str, Any]:
        """ilert's ``EscalationPolicy``; ``inspect`` adds ``rev`` and ``updatedAt``."""
        body: dict[str, Any] = {
            "id": policy.id,
            "name": policy.name,
            "routingKey": policy.routing_key,
            "escalationRules": [self._rule_json(level) for level in policy.levels],
        }
        if inspect:
            body["rev"] = policy.rev
            body["updatedAt"] = policy.updated_at
        return body

    def _rule_json(self, level: Level) -> dict[str, Any]:
        return {
            "escalationTimeout": level.escalation_timeout,
            "users": [self._users[user_id].to_json() for user_id in level.user_ids],
            "schedules": [],
            "teams": [],
        }

    def _next_rev(self) -> int:
        self._rev += 1
        return self._rev


def check_seed(seed: Seed) -> None:
    """Raise :class:`~.seed.Refusal` when ``seed`` cannot start an empty sandbox: what only the
    whole seed can tell (a taken id, e-mail or routing key; a level naming no seeded user)."""
    PolicyBook(seed, clock=lambda: "")


def _next_id(taken: set[int], seeded: Sequence[SeedUser] | Sequence[SeedPolicy]) -> int:
    """The lowest id above every id taken or asked for explicitly in this seed."""
    asked = {item.id for item in seeded if item.id is not None}
    return max(taken | asked, default=0) + 1


def _find(ref: UserRef, by_id: dict[int, User], by_email: dict[str, User]) -> int:
    user = by_id.get(ref.id) if ref.id is not None else by_email.get(email_key(ref.email or ""))
    if user is None:
        named = f"id {ref.id}" if ref.id is not None else f"e-mail {ref.email}"
        raise Refusal(400, INVALID_SEED, f"a level names user {named}, who is not seeded")
    return user.id


def _conflict(message: str) -> Refusal:
    return Refusal(409, SEED_CONFLICT, message)
