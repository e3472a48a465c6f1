"""What the sandbox is seeded with: API keys, heartbeat and integration keys, users and
escalation policies, parsed and checked.

A seed, from ``ilagent sandbox --seed FILE`` or ``POST /sandbox/seed`` (every part optional;
the names are ilert's own where ilert has one)::

    {"apiKeys": ["user-api-key-1"],                  # accepted as "Authorization: Bearer <key>"
     "heartbeatKeys": ["ih2:900:acme:hb1:7d5e"],     # the heartbeat monitors that exist
     "integrationKeys": ["il1api0001"],              # the alert sources that exist
     "users": [{"id": 7,                             # optional: the next free id otherwise
                "email": "ann@example.com",          # required, unique (case-insensitive)
                "firstName": "Ann", "lastName": "Smith"}],      # optional, default ""
     "policies": [{"id": 3,                          # optional: the next free id otherwise
                   "name": "Plant three",            # optional, default "Policy <id>"
                   "routingKey": "powerplantthree50",  # optional, unique
                   "escalationRules": [              # the levels, 0 first
                       {"escalationTimeout": 5,      # optional here (default 1)
                        "users": [{"id": 7}, {"email": "bob@example.com"}]}]}]}

A level's users are named by ``id`` or, in a seed only, by ``email``; they must be seeded users.
Unknown fields are refused so a typo is not silently ignored.

``heartbeatKeys`` and ``integrationKeys`` let the sandbox say no as ilert does. While none of a
kind is seeded, every key of that kind is accepted (the demo and quick tries rely on it); once
one is, a ping for another heartbeat key is 404 and an event for another integration key is
refused (see :mod:`.api`). Keys only add up, until a reset goes back to the startup seed. :func:`parse_level` also checks
the body of ilert's ``PUT /api/escalation-policies/{id}/levels/{level}``, where ilert's rules
apply instead: ``escalationTimeout`` is required and users are named by ``id`` only.

Pure functions over JSON values; a mistake raises :class:`Refusal` carrying the HTTP status and
ilert error body the sandbox answers with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

DEFAULT_ESCALATION_TIMEOUT = 1  # minutes; ilagent falls back to the same when a level has none
SEED_FIELDS = ("apiKeys", "heartbeatKeys", "integrationKeys", "users", "policies")
USER_FIELDS = ("id", "email", "firstName", "lastName")
POLICY_FIELDS = ("id", "name", "routingKey", "escalationRules")
# ilert's EscalationRule; the sandbox keeps users only, so the rest must be null or empty
LEVEL_FIELDS = ("escalationTimeout", "users", "schedules", "teams", "user", "schedule", "team")
_USERS_ONLY = ("schedules", "teams", "user", "schedule", "team")

MISSING_FIELD = "MISSING_FIELD"
INVALID_FIELD = "INVALID_FIELD"
INVALID_BODY = "INVALID_BODY"


@dataclass(frozen=True)
class Refusal(ValueError):
    """A request the sandbox refuses: the status and the ilert error body it answers with."""

    status: int
    code: str
    message: str

    def __str__(self) -> str:
        return self.message

    def as_body(self) -> dict[str, Any]:
        """The ilert error body ``{status, message, code}``."""
        return {"status": self.status, "message": self.message, "code": self.code}


@dataclass(frozen=True)
class UserRef:
    """A user named in a level: by id, or (in a seed) by e-mail."""

    id: int | None = None
    email: str | None = None


@dataclass(frozen=True)
class SeedUser:
    """A user to create; ``id`` None takes the next free one."""

    email: str
    id: int | None = None
    first_name: str = ""
    last_name: str = ""


@dataclass(frozen=True)
class SeedLevel:
    """One escalation level: its timeout in minutes and its users."""

    escalation_timeout: int = DEFAULT_ESCALATION_TIMEOUT
    users: tuple[UserRef, ...] = ()


@dataclass(frozen=True)
class SeedPolicy:
    """An escalation policy to create; ``id`` None takes the next free one."""

    id: int | None = None
    name: str | None = None
    routing_key: str | None = None
    levels: tuple[SeedLevel, ...] = ()


@dataclass(frozen=True)
class Seed:
    """A parsed seed; :meth:`with_api_keys` adds keys given apart (``--api_key``)."""

    api_keys: tuple[str, ...] = ()
    users: tuple[SeedUser, ...] = ()
    policies: tuple[SeedPolicy, ...] = ()
    heartbeat_keys: tuple[str, ...] = ()
    integration_keys: tuple[str, ...] = ()

    def with_api_keys(self, keys: tuple[str, ...]) -> Seed:
        """This seed with ``keys`` accepted too."""
        return replace(self, api_keys=self.api_keys + keys)


def parse_seed(body: object) -> Seed:
    """Check a seed's shape (see the module docstring); raises :class:`Refusal` (400)."""
    seed = _object(body, "the seed", SEED_FIELDS)
    users = tuple(_user(user, f"users[{n}]") for n, user in enumerate(_list(seed, "users", "")))
    policies = tuple(
        _policy(policy, f"policies[{n}]") for n, policy in enumerate(_list(seed, "policies", ""))
    )
    return Seed(
        api_keys=_keys(seed, "apiKeys"),
        users=users,
        policies=policies,
        heartbeat_keys=_keys(seed, "heartbeatKeys"),
        integration_keys=_keys(seed, "integrationKeys"),
    )


def _keys(seed: Mapping[str, Any], name: str) -> tuple[str, ...]:
    return tuple(parse_api_key(key, f"{name}[{n}]") for n, key in enumerate(_list(seed, name, "")))


def parse_api_key(key: object, where: str = "api key") -> str:
    """A key (API, heartbeat or integration key) as the sandbox accepts it: a non-empty string
    without whitespace."""
    if not isinstance(key, str) or not key or key != "".join(key.split()):
        raise _invalid(where, "must be a non-empty string without spaces")
    return key


def parse_level(body: object, *, where: str = "", seeding: bool = False) -> SeedLevel:
    """One level (ilert's ``EscalationRule``), from a seed or from a level update."""
    level = _object(body, where or "the body", LEVEL_FIELDS)
    for name in _USERS_ONLY:
        if level.get(name) not in (None, []):
            raise _invalid(f"{where}{name}", "is not kept by the sandbox: only 'users' are")
    timeout = level.get("escalationTimeout")
    if timeout is None and not seeding:
        raise Refusal(400, MISSING_FIELD, f"'{where}escalationTimeout' is required")
    if timeout is not None:
        _check_int(timeout, f"{where}escalationTimeout", low=0)
    users = tuple(
        _user_ref(ref, f"{where}users[{n}]", by_email=seeding)
        for n, ref in enumerate(_list(level, "users", where))
    )
    return SeedLevel(DEFAULT_ESCALATION_TIMEOUT if timeout is None else timeout, users)


def _user(body: object, where: str) -> SeedUser:
    user = _object(body, where, USER_FIELDS)
    email = user.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise _invalid(f"{where}.email", "must be an e-mail address")
    return SeedUser(
        email=email.strip(),
        id=_optional_id(user, where),
        first_name=_optional_str(user, "firstName", where) or "",
        last_name=_optional_str(user, "lastName", where) or "",
    )


def _policy(body: object, where: str) -> SeedPolicy:
    policy = _object(body, where, POLICY_FIELDS)
    routing_key = _optional_str(policy, "routingKey", where)
    if routing_key == "":
        raise _invalid(f"{where}.routingKey", "must not be empty")
    levels = tuple(
        parse_level(level, where=f"{where}.escalationRules[{n}].", seeding=True)
        for n, level in enumerate(_list(policy, "escalationRules", f"{where}."))
    )
    return SeedPolicy(
        id=_optional_id(policy, where),
        name=_optional_str(policy, "name", where),
        routing_key=routing_key,
        levels=levels,
    )


def _user_ref(body: object, where: str, *, by_email: bool) -> UserRef:
    if not isinstance(body, Mapping):
        raise _invalid(where, 'must be an object such as {"id": 7}')
    user_id, email = body.get("id"), body.get("email")
    if user_id is not None:
        _check_int(user_id, f"{where}.id", low=1)
        return UserRef(id=user_id)
    if by_email and isinstance(email, str) and email.strip():
        return UserRef(email=email.strip())
    what = "an 'id' or an 'email'" if by_email else "an 'id'"
    raise Refusal(400, MISSING_FIELD, f"'{where}' needs {what}")


def _object(body: object, where: str, known: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise Refusal(400, INVALID_BODY, f"{where.rstrip('.')} must be a JSON object")
    unknown = sorted(set(body) - set(known))
    if unknown:
        prefix = f"{where.rstrip('.')}: " if where else ""
        raise _invalid_body(
            f"{prefix}unknown field(s) {', '.join(unknown)}; known: {', '.join(known)}"
        )
    return body


def _list(body: Mapping[str, Any], name: str, where: str) -> list[Any]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _invalid(f"{where}{name}", "must be a list")
    return value


def _optional_id(body: Mapping[str, Any], where: str) -> int | None:
    value = body.get("id")
    if value is not None:
        _check_int(value, f"{where}.id", low=1)
    return value


def _optional_str(body: Mapping[str, Any], name: str, where: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise _invalid(f"{where}.{name}", "must be a string")
    return value


def _check_int(value: object, where: str, *, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _invalid(where, f"must be an integer >= {low}")


def _invalid(where: str, what: str) -> Refusal:
    return Refusal(400, INVALID_FIELD, f"'{where}' {what}")


def _invalid_body(message: str) -> Refusal:
    return Refusal(400, INVALID_BODY, message)
