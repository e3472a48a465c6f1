"""The sandbox's users and escalation policies: seed parsing and ilert's three calls, in memory."""

from __future__ import annotations

from typing import Any

import pytest

from ilagent.sandbox.policies import PolicyBook, check_seed
from ilagent.sandbox.seed import (
    Refusal,
    Seed,
    SeedLevel,
    SeedPolicy,
    SeedUser,
    UserRef,
    parse_level,
    parse_seed,
)

ANN = {"id": 7, "email": "ann@example.com", "firstName": "Ann", "lastName": "Smith"}
BOB = {"email": "Bob@Example.com"}
PLANT = {
    "id": 3,
    "name": "Plant three",
    "routingKey": "powerplantthree50",
    "escalationRules": [
        {"escalationTimeout": 5, "users": [{"id": 7}]},
        {"users": [{"email": "bob@example.com"}]},
    ],
}
SEED = {"apiKeys": ["user-key-1"], "users": [ANN, BOB], "policies": [PLANT]}


def book(seed: dict[str, Any] = SEED) -> PolicyBook:
    return PolicyBook(parse_seed(seed), clock=lambda: "2026-01-02T03:04:05.000Z")


def level_users(policy: dict[str, Any], index: int) -> list[str]:
    return [user["email"] for user in policy["escalationRules"][index]["users"]]


# -- parsing ----------------------------------------------------------------------------------


def test_seed_is_parsed_with_ilert_names_and_defaults() -> None:
    """A seed's users, policies and levels take ilert's field names; absent parts get defaults."""
    assert parse_seed(SEED) == Seed(
        api_keys=("user-key-1",),
        users=(
            SeedUser(email="ann@example.com", id=7, first_name="Ann", last_name="Smith"),
            SeedUser(email="Bob@Example.com"),
        ),
        policies=(
            SeedPolicy(
                id=3,
                name="Plant three",
                routing_key="powerplantthree50",
                levels=(
                    SeedLevel(5, (UserRef(id=7),)),
                    SeedLevel(1, (UserRef(email="bob@example.com"),)),
                ),
            ),
        ),
    )
    assert parse_seed({}) == Seed()


@pytest.mark.parametrize(
    ("seed", "complaint"),
    [
        ([], "the seed must be a JSON object"),
        ({"user": []}, "unknown field(s) user"),
        ({"apiKeys": "k"}, "'apiKeys' must be a list"),
        ({"apiKeys": [""]}, "'apiKeys[0]' must be a non-empty string"),
        ({"apiKeys": ["two words"]}, "'apiKeys[0]' must be a non-empty string without spaces"),
        ({"users": [{"id": 1}]}, "'users[0].email' must be an e-mail address"),
        ({"users": [{"email": "a@b", "id": 0}]}, "'users[0].id' must be an integer >= 1"),
        ({"users": [{"email": "a@b", "id": True}]}, "'users[0].id' must be an integer"),
        ({"users": [{"email": "a@b", "name": "A"}]}, "users[0]: unknown field(s) name"),
        ({"policies": [{"routingKey": ""}]}, "'policies[0].routingKey' must not be empty"),
        ({"policies": [{"routingKey": 5}]}, "'policies[0].routingKey' must be a string"),
        (
            {"policies": [{"escalationRules": [{"escalationTimeout": -1}]}]},
            "'policies[0].escalationRules[0].escalationTimeout' must be an integer >= 0",
        ),
        (
            {"policies": [{"escalationRules": [{"users": [{}]}]}]},
            "'policies[0].escalationRules[0].users[0]' needs an 'id' or an 'email'",
        ),
        (
            {"policies": [{"escalationRules": [{"schedules": [{"id": 1}]}]}]},
            "'policies[0].escalationRules[0].schedules' is not kept by the sandbox",
        ),
    ],
)
def test_bad_seed_is_refused_naming_the_field(seed: Any, complaint: str) -> None:
    """A seed with a wrong, unknown or missing field is a 400 whose message names that field."""
    with pytest.raises(Refusal) as refusal:
        parse_seed(seed)
    assert refusal.value.status == 400
    assert complaint in refusal.value.message


@pytest.mark.parametrize(
    ("body", "code", "complaint"),
    [
        ({"users": [{"id": 7}]}, "MISSING_FIELD", "'escalationTimeout' is required"),
        ({"escalationTimeout": "5"}, "INVALID_FIELD", "'escalationTimeout' must be an integer"),
        ({"escalationTimeout": 5, "users": [{"email": "a@b"}]}, "MISSING_FIELD", "needs an 'id'"),
        ({"escalationTimeout": 5, "users": {"id": 7}}, "INVALID_FIELD", "'users' must be a list"),
        ({"escalationTimeout": 5, "teams": [{"id": 1}]}, "INVALID_FIELD", "'teams' is not kept"),
        ({"escalationTimeout": 5, "userz": []}, "INVALID_BODY", "unknown field(s) userz"),
        ([{"escalationTimeout": 5}], "INVALID_BODY", "the body must be a JSON object"),
    ],
)
def test_level_update_body_follows_ilerts_rules(body: Any, code: str, complaint: str) -> None:
    """A level update needs escalationTimeout and names users by id only; else 400 with a code."""
    with pytest.raises(Refusal) as refusal:
        parse_level(body)
    assert (refusal.value.status, refusal.value.code) == (400, code)
    assert complaint in refusal.value.message


def test_level_update_body_as_ilagent_sends_it() -> None:
    """ilagent's exact body parses; null or empty schedules, teams and singular fields pass."""
    assert parse_level({"escalationTimeout": 5, "users": [{"id": 99}]}) == SeedLevel(
        5, (UserRef(id=99),)
    )
    empty = {"escalationTimeout": 0, "schedules": [], "teams": None, "user": None}
    assert parse_level(empty) == SeedLevel(0, ())


# -- seeding ----------------------------------------------------------------------------------


def test_seeding_assigns_free_ids_and_resolves_users_by_email() -> None:
    """Users without an id get the next free one; a level may name a user by e-mail."""
    policies = book()
    assert policies.users()[1] == {"id": 8, "firstName": "", "lastName": "", "email": BOB["email"]}
    [plant] = policies.policies()
    assert level_users(plant, 0) == ["ann@example.com"]
    assert level_users(plant, 1) == ["Bob@Example.com"]
    assert plant["escalationRules"][1]["escalationTimeout"] == 1


def test_auto_id_skips_ids_asked_for_later_in_the_same_seed() -> None:
    """An id assigned automatically never collides with an id a later entry asks for."""
    seeded = book({"users": [{"email": "a@x"}, {"email": "b@x", "id": 1}]}).users()
    assert {user["email"]: user["id"] for user in seeded} == {"a@x": 2, "b@x": 1}


@pytest.mark.parametrize(
    ("second", "code", "complaint"),
    [
        ({"users": [{"id": 7, "email": "x@example.com"}]}, "SEED_CONFLICT", "user id 7 is taken"),
        ({"users": [{"email": "ANN@example.com "}]}, "SEED_CONFLICT", "ANN@example.com exists"),
        ({"policies": [{"id": 3}]}, "SEED_CONFLICT", "policy id 3 is taken"),
        ({"policies": [{"routingKey": "powerplantthree50"}]}, "SEED_CONFLICT", "is taken"),
        (
            {"policies": [{"escalationRules": [{"users": [{"id": 99}]}]}]},
            "INVALID_SEED",
            "user id 99, who is not seeded",
        ),
        (
            {"users": [{"email": "c@x"}], "policies": [{"id": 3}]},
            "SEED_CONFLICT",
            "policy id 3 is taken",
        ),
    ],
)
def test_conflicting_seed_changes_nothing(
    second: dict[str, Any], code: str, complaint: str
) -> None:
    """A seed whose ids, e-mails or routing keys are taken, or whose levels name unknown users,
    is refused whole: nothing of it is added."""
    policies = book()
    before = (policies.users(), policies.policies())
    with pytest.raises(Refusal) as refusal:
        policies.apply(parse_seed(second))
    assert refusal.value.code == code
    assert complaint in refusal.value.message
    assert (policies.users(), policies.policies()) == before


def test_check_seed_catches_what_only_the_whole_seed_shows() -> None:
    """A startup seed naming a user it does not seed is refused before the sandbox starts."""
    check_seed(parse_seed(SEED))
    with pytest.raises(Refusal, match="not seeded"):
        check_seed(parse_seed({"policies": [{"escalationRules": [{"users": [{"id": 1}]}]}]}))


# -- ilert's calls ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "accepted"),
    [("user-key-1", True), ("user-key-2", False), ("USER-KEY-1", False), ("", False)],
)
def test_only_seeded_api_keys_are_accepted(key: str, accepted: bool) -> None:
    """An API key is accepted only when it is exactly a seeded one."""
    assert book().accepts(key) is accepted


@pytest.mark.parametrize(
    ("email", "user_id"),
    [("ann@example.com", 7), ("  ANN@example.COM ", 7), ("bob@example.com", 8), ("x@y", None)],
)
def test_find_user_by_email_ignores_case_and_spaces(email: str, user_id: int | None) -> None:
    """Users are found by e-mail trimmed and case-insensitively; no match is 404 NOT_FOUND."""
    policies = book()
    if user_id is None:
        with pytest.raises(Refusal) as refusal:
            policies.find_user(email)
        assert refusal.value.as_body() == {
            "status": 404,
            "message": f"no user with e-mail {email}",
            "code": "NOT_FOUND",
        }
    else:
        assert policies.find_user(email)["id"] == user_id


@pytest.mark.parametrize(
    ("routing_key", "policy_id"),
    [
        ("powerplantthree50", 3),
        ("nothing,powerplantthree50", 3),
        ("nothing, powerplantthree50", 3),
        ("POWERPLANTTHREE50", None),
        ("powerplantthree", None),
    ],
)
def test_resolve_takes_the_first_routing_key_that_names_a_policy(
    routing_key: str, policy_id: int | None
) -> None:
    """Routing keys match exactly; in a comma-separated list the first that matches wins."""
    policies = book()
    if policy_id is None:
        with pytest.raises(Refusal) as refusal:
            policies.resolve(routing_key)
        assert (refusal.value.status, refusal.value.code) == (404, "NOT_FOUND")
        assert routing_key in refusal.value.message
    else:
        resolved = policies.resolve(routing_key)
        assert resolved["id"] == policy_id
        assert set(resolved) == {"id", "name", "routingKey", "escalationRules"}
        assert resolved["escalationRules"][0] == {
            "escalationTimeout": 5,
            "users": [ANN],
            "schedules": [],
            "teams": [],
        }


def test_set_level_replaces_the_level_and_bumps_rev() -> None:
    """A level update replaces timeout and users of that level only, and the policy's rev grows."""
    policies = book()
    [before] = policies.policies()
    change = policies.set_level(3, 1, SeedLevel(10, (UserRef(id=7),)))
    assert change.rule == {"escalationTimeout": 10, "users": [ANN], "schedules": [], "teams": []}
    [after] = policies.policies()
    assert change.policy == after
    assert level_users(after, 0) == ["ann@example.com"]
    assert level_users(after, 1) == ["ann@example.com"]
    assert after["rev"] > before["rev"]
    assert (before["updatedAt"], after["updatedAt"]) == (None, "2026-01-02T03:04:05.000Z")


@pytest.mark.parametrize(
    ("policy_id", "index", "users", "status", "complaint"),
    [
        (4, 0, (7,), 404, "no escalation policy with id 4"),
        (3, 2, (7,), 404, "escalation policy 3 has no level 2 (it has 2, numbered from 0)"),
        (3, 0, (7, 99), 400, "'users[1].id': no user with id 99"),
    ],
)
def test_set_level_refuses_what_is_not_there(
    policy_id: int, index: int, users: tuple[int, ...], status: int, complaint: str
) -> None:
    """No such policy or level is 404 (levels are never created); no such user is 400."""
    policies = book()
    before = policies.policies()
    level = SeedLevel(5, tuple(UserRef(id=user_id) for user_id in users))
    with pytest.raises(Refusal) as refusal:
        policies.set_level(policy_id, index, level)
    assert (refusal.value.status, refusal.value.message) == (status, complaint)
    assert policies.policies() == before


def test_reset_goes_back_to_the_startup_seed_and_rev_keeps_growing() -> None:
    """A reset forgets later seeds and level changes; revs never go back, so pages see news."""
    policies = book()
    policies.set_level(3, 0, SeedLevel(5, (UserRef(id=8),)))
    policies.apply(parse_seed({"apiKeys": ["later-key"], "users": [{"email": "c@x"}]}))
    changed_rev = policies.policies()[0]["rev"]
    policies.reset()
    [plant] = policies.policies()
    assert level_users(plant, 0) == ["ann@example.com"]
    assert [user["id"] for user in policies.users()] == [7, 8]
    assert (policies.accepts("later-key"), policies.accepts("user-key-1")) == (False, True)
    assert plant["rev"] > changed_rev


def test_policies_can_be_picked_by_routing_key() -> None:
    """The inspection list can be narrowed to the policy with exactly one routing key."""
    policies = book()
    policies.apply(parse_seed({"policies": [{"routingKey": "other"}]}))
    assert [p["id"] for p in policies.policies()] == [3, 4]
    assert [p["id"] for p in policies.policies(routing_key="other")] == [4]
    assert policies.policies(routing_key="none") == []
    assert policies.policies(routing_key="other")[0]["name"] == "Policy 4"
