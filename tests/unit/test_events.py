"""Table tests of ``ilagent.events.validate_event``: event bodies checked as ilert's API does."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ilagent.events import EventError, validate_event

MINIMAL = {"integrationKey": "il1api123", "eventType": "ALERT", "summary": "Disk full"}

FULL = {
    "integrationKey": "il1api123",
    "eventType": "ALERT",
    "summary": "Disk full",
    "details": "/var is at 99 %",
    "alertKey": "disk-var",
    "routingKey": "team-storage",
    "priority": "HIGH",
    "severity": 3,
    "images": [{"src": "https://img/1.png", "href": "https://img", "alt": "graph"}],
    "links": [{"href": "https://runbook", "text": "Runbook"}],
    "comments": [{"content": "seen before", "creator": "ops"}],
    "labels": {"env": "prod", "dc": "eu-1"},
    "services": [{"alias": "storage"}, {"id": 42}, {"id": 7, "alias": "db"}],
    "customDetails": {"host": "srv1", "nested": {"a": [1, 2]}},
}


def event(**changes: Any) -> dict[str, Any]:
    """The minimal valid ALERT with ``changes`` applied; a value of ``...`` removes the key."""
    body: dict[str, Any] = {**MINIMAL, **changes}
    return {k: v for k, v in body.items() if v is not ...}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(MINIMAL, id="minimal-alert"),
        pytest.param(FULL, id="full-alert"),
        pytest.param(event(eventType="ACCEPT", summary=...), id="accept-without-summary"),
        pytest.param(event(eventType="RESOLVE", summary=""), id="resolve-empty-summary"),
        pytest.param(
            event(eventType="COMMENT", summary=..., comments=[{"content": "c"}]), id="comment"
        ),
        pytest.param(event(summary="  "), id="alert-blank-summary"),
        pytest.param(event(priority="LOW"), id="priority-low"),
        pytest.param(event(severity=1), id="severity-1"),
        pytest.param(event(severity=5), id="severity-5"),
        pytest.param(event(labels={}), id="labels-empty"),
        pytest.param(event(images=[], links=[], comments=[], services=[]), id="empty-lists"),
        pytest.param(event(images=[{"src": "s"}]), id="image-src-only"),
        pytest.param(event(links=[{"href": "h"}]), id="link-href-only"),
        pytest.param(event(services=[{"id": 1}]), id="service-id-only"),
        pytest.param(event(customDetails={}), id="customDetails-empty"),
        pytest.param(event(unknownField=[1, 2]), id="unknown-field-kept"),
    ],
)
def test_valid_event_is_returned_unchanged(body: dict[str, Any]) -> None:
    """A valid body without nulls or apiKey comes back equal, integrationKey first."""
    result = validate_event(body)
    assert result == body
    assert next(iter(result)) == "integrationKey"


def test_validation_does_not_modify_its_argument() -> None:
    """validate_event returns a new dict and leaves the caller's body as it was."""
    body = {**copy.deepcopy(FULL), "apiKey": "old", "details": None}
    before = copy.deepcopy(body)
    validate_event(body)
    assert body == before


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        pytest.param({"apiKey": "legacy"}, "legacy", id="apiKey-alias"),
        pytest.param({"integrationKey": "new", "apiKey": "old"}, "new", id="integrationKey-wins"),
        pytest.param({"integrationKey": None, "apiKey": "old"}, "old", id="null-integrationKey"),
        pytest.param({"integrationKey": "new", "apiKey": None}, "new", id="null-apiKey"),
        pytest.param({"integrationKey": "new", "apiKey": 5}, "new", id="unused-apiKey-unchecked"),
    ],
)
def test_api_key_is_accepted_as_the_legacy_name(keys: dict[str, Any], expected: str) -> None:
    """apiKey stands in for integrationKey and never appears in the result."""
    body = {"eventType": "ALERT", "summary": "s", **keys}
    result = validate_event(body)
    assert result["integrationKey"] == expected
    assert "apiKey" not in result
    assert next(iter(result)) == "integrationKey"


def test_null_fields_are_dropped() -> None:
    """Every optional field set to null is treated as absent and left out of the result."""
    nulls = dict.fromkeys(
        (
            "details",
            "alertKey",
            "routingKey",
            "priority",
            "severity",
            "images",
            "links",
            "comments",
            "labels",
            "services",
            "customDetails",
        )
    )
    assert validate_event({**MINIMAL, **nulls}) == MINIMAL


def test_null_members_of_items_are_accepted() -> None:
    """Null optional members of image and service items count as absent and are kept as sent."""
    body = event(
        images=[{"src": "s", "href": None, "alt": None}], services=[{"id": None, "alias": "a"}]
    )
    assert validate_event(body) == body


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        # the body itself
        pytest.param([], "body", "INVALID_BODY", id="array-body"),
        pytest.param("event", "body", "INVALID_BODY", id="string-body"),
        pytest.param(None, "body", "INVALID_BODY", id="null-body"),
        # integrationKey
        pytest.param({}, "integrationKey", "MISSING_FIELD", id="empty-object"),
        pytest.param(event(integrationKey=...), "integrationKey", "MISSING_FIELD", id="no-key"),
        pytest.param(
            event(integrationKey=None, apiKey=None),
            "integrationKey",
            "MISSING_FIELD",
            id="null-keys",
        ),
        pytest.param(event(integrationKey=""), "integrationKey", "INVALID_FIELD", id="empty-key"),
        pytest.param(event(integrationKey="  "), "integrationKey", "INVALID_FIELD", id="blank-key"),
        pytest.param(event(integrationKey=5), "integrationKey", "INVALID_FIELD", id="number-key"),
        pytest.param(
            event(integrationKey=..., apiKey=""),
            "integrationKey",
            "INVALID_FIELD",
            id="empty-apiKey",
        ),
        # eventType
        pytest.param(event(eventType=...), "eventType", "MISSING_FIELD", id="no-eventType"),
        pytest.param(event(eventType=None), "eventType", "MISSING_FIELD", id="null-eventType"),
        pytest.param(event(eventType="alert"), "eventType", "INVALID_FIELD", id="lower-case-type"),
        pytest.param(event(eventType="UPDATE"), "eventType", "INVALID_FIELD", id="unknown-type"),
        pytest.param(event(eventType=""), "eventType", "INVALID_FIELD", id="empty-type"),
        pytest.param(event(eventType=1), "eventType", "INVALID_FIELD", id="number-type"),
        pytest.param(event(eventType=["ALERT"]), "eventType", "INVALID_FIELD", id="array-type"),
        # summary: a string, required only for ALERT
        pytest.param(event(summary=...), "summary", "MISSING_FIELD", id="alert-no-summary"),
        pytest.param(event(summary=None), "summary", "MISSING_FIELD", id="alert-null-summary"),
        pytest.param(event(summary=""), "summary", "MISSING_FIELD", id="alert-empty-summary"),
        pytest.param(event(summary=5), "summary", "INVALID_FIELD", id="number-summary"),
        pytest.param(
            event(eventType="RESOLVE", summary=5),
            "summary",
            "INVALID_FIELD",
            id="resolve-bad-summary",
        ),
        # optional strings
        pytest.param(event(details=1), "details", "INVALID_FIELD", id="number-details"),
        pytest.param(event(alertKey=[]), "alertKey", "INVALID_FIELD", id="array-alertKey"),
        pytest.param(event(routingKey={}), "routingKey", "INVALID_FIELD", id="object-routingKey"),
        # priority
        pytest.param(event(priority="MEDIUM"), "priority", "INVALID_FIELD", id="priority-medium"),
        pytest.param(event(priority="high"), "priority", "INVALID_FIELD", id="priority-lower-case"),
        pytest.param(event(priority=1), "priority", "INVALID_FIELD", id="priority-number"),
        # severity: an integer from 1 to 5, not a bool
        pytest.param(event(severity=0), "severity", "INVALID_FIELD", id="severity-0"),
        pytest.param(event(severity=6), "severity", "INVALID_FIELD", id="severity-6"),
        pytest.param(event(severity=-1), "severity", "INVALID_FIELD", id="severity-negative"),
        pytest.param(event(severity=2.5), "severity", "INVALID_FIELD", id="severity-float"),
        pytest.param(event(severity=3.0), "severity", "INVALID_FIELD", id="severity-whole-float"),
        pytest.param(event(severity="3"), "severity", "INVALID_FIELD", id="severity-string"),
        pytest.param(event(severity=True), "severity", "INVALID_FIELD", id="severity-true"),
        pytest.param(event(severity=False), "severity", "INVALID_FIELD", id="severity-false"),
        # images
        pytest.param(event(images="x"), "images", "INVALID_FIELD", id="images-string"),
        pytest.param(event(images={"src": "s"}), "images", "INVALID_FIELD", id="images-object"),
        pytest.param(event(images=["s"]), "images[0]", "INVALID_FIELD", id="image-string"),
        pytest.param(event(images=[{}]), "images[0].src", "INVALID_FIELD", id="image-no-src"),
        pytest.param(event(images=[{"src": 1}]), "images[0].src", "INVALID_FIELD", id="image-src"),
        pytest.param(
            event(images=[{"src": "s"}, {"src": "s", "href": 1}]),
            "images[1].href",
            "INVALID_FIELD",
            id="second-image-href",
        ),
        pytest.param(
            event(images=[{"src": "s", "alt": True}]),
            "images[0].alt",
            "INVALID_FIELD",
            id="image-alt",
        ),
        # links
        pytest.param(event(links="x"), "links", "INVALID_FIELD", id="links-string"),
        pytest.param(
            event(links=[{"text": "t"}]), "links[0].href", "INVALID_FIELD", id="link-no-href"
        ),
        pytest.param(
            event(links=[{"href": "h", "text": 1}]),
            "links[0].text",
            "INVALID_FIELD",
            id="link-text",
        ),
        # comments
        pytest.param(event(comments=[1]), "comments[0]", "INVALID_FIELD", id="comment-number"),
        pytest.param(
            event(comments=[{"creator": "c"}]),
            "comments[0].content",
            "INVALID_FIELD",
            id="comment-no-content",
        ),
        pytest.param(
            event(comments=[{"content": "x", "creator": 1}]),
            "comments[0].creator",
            "INVALID_FIELD",
            id="comment-creator",
        ),
        # labels: an object of string values
        pytest.param(event(labels="env=prod"), "labels", "INVALID_FIELD", id="labels-string"),
        pytest.param(event(labels=["env"]), "labels", "INVALID_FIELD", id="labels-array"),
        pytest.param(event(labels={"n": 1}), "labels", "INVALID_FIELD", id="labels-number-value"),
        pytest.param(event(labels={"n": None}), "labels", "INVALID_FIELD", id="labels-null-value"),
        # services: objects with an integer id and/or a string alias
        pytest.param(event(services="s"), "services", "INVALID_FIELD", id="services-string"),
        pytest.param(event(services=[1]), "services[0]", "INVALID_FIELD", id="service-number"),
        pytest.param(event(services=[{}]), "services[0]", "INVALID_FIELD", id="service-empty"),
        pytest.param(
            event(services=[{"id": None, "alias": None}]),
            "services[0]",
            "INVALID_FIELD",
            id="service-nulls",
        ),
        pytest.param(
            event(services=[{"id": "1"}]), "services[0].id", "INVALID_FIELD", id="service-id-string"
        ),
        pytest.param(
            event(services=[{"id": True}]), "services[0].id", "INVALID_FIELD", id="service-id-bool"
        ),
        pytest.param(
            event(services=[{"id": 1.5}]), "services[0].id", "INVALID_FIELD", id="service-id-float"
        ),
        pytest.param(
            event(services=[{"alias": 5}]),
            "services[0].alias",
            "INVALID_FIELD",
            id="service-alias-number",
        ),
        # customDetails: an object
        pytest.param(event(customDetails="x"), "customDetails", "INVALID_FIELD", id="details-text"),
        pytest.param(
            event(customDetails=[1]), "customDetails", "INVALID_FIELD", id="details-array"
        ),
        pytest.param(event(customDetails=0), "customDetails", "INVALID_FIELD", id="details-number"),
    ],
)
def test_invalid_event_names_the_offending_field(body: Any, field: str, code: str) -> None:
    """An invalid body raises EventError naming the first bad field and a stable code."""
    with pytest.raises(EventError) as caught:
        validate_event(body)
    assert caught.value.field == field
    assert caught.value.code == code
    assert str(caught.value) == caught.value.message
    assert caught.value.message


def test_fields_are_checked_in_a_fixed_order() -> None:
    """With several bad fields the key is reported first, then eventType, then summary."""
    with pytest.raises(EventError) as caught:
        validate_event({"eventType": "x", "summary": 5})
    assert caught.value.field == "integrationKey"
    with pytest.raises(EventError) as caught:
        validate_event({"integrationKey": "k", "eventType": "x", "summary": 5})
    assert caught.value.field == "eventType"


def test_event_error_is_a_value_error() -> None:
    """EventError can be caught as ValueError by callers that only care that input was bad."""
    with pytest.raises(ValueError, match="'eventType' is required"):
        validate_event({"integrationKey": "k"})


@pytest.mark.parametrize(
    ("status", "expected"),
    [pytest.param(None, 400, id="default-400"), pytest.param(422, 422, id="explicit-status")],
)
def test_error_body_has_ilert_shape(status: int | None, expected: int) -> None:
    """as_body() gives ilert's error JSON {status, message, code}, 400 unless told otherwise."""
    error = EventError("priority", "INVALID_FIELD", "'priority' must be HIGH or LOW")
    body = error.as_body() if status is None else error.as_body(status)
    assert body == {
        "status": expected,
        "message": "'priority' must be HIGH or LOW",
        "code": "INVALID_FIELD",
    }
