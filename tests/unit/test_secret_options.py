"""Secret options are listed once, and that list decides how each is masked everywhere: in log
lines (by value, whatever its shape), in ``config show`` and in the configuration's repr."""

from __future__ import annotations

import io
import logging
import uuid

import pytest

from ilagent.cli import build_parser, resolve_options
from ilagent.commands.daemon import daemon_config
from ilagent.logs import (
    MaskingFormatter,
    RepeatFilter,
    hide_secrets,
    mask_key,
    register_secret,
)
from ilagent.secret_options import (
    KEY,
    SECRET_OPTIONS,
    WHOLE,
    is_secret_property,
    register_secrets,
    secrets_of,
    shown,
)

# words in an option's name that say it holds a secret; file options hold paths, not secrets
SECRET_WORDS = ("password", "secret", "token", "api_key", "passphrase")
NOT_SECRETS = frozenset({"http_token_file"})


def fresh(kind: str) -> str:
    """A secret shaped nothing like an ilert key."""
    return f"s3cr3t-{kind}-{uuid.uuid4().hex}"


def every_option() -> set[str]:
    """The long names of every option of every command."""
    parser = build_parser()
    commands = parser.commands  # type: ignore[attr-defined]
    return {action.dest for p in (parser, *commands.values()) for action in p._actions
            if action.option_strings}


def test_every_option_that_holds_a_secret_is_listed() -> None:
    """Passwords, tokens, API keys, integration and heartbeat keys of every command are in the
    one list, and the list names only options that exist."""
    names = every_option()
    worded = {n for n in names if any(w in n for w in SECRET_WORDS)} - NOT_SECRETS
    assert worded <= set(SECRET_OPTIONS)
    assert {"event_key", "heartbeat", "integration_key", "ilert_api_key", "http_token",
            "kafka_sasl_password", "kafka_ssl_key_password", "mqtt_password"} <= set(
                SECRET_OPTIONS)
    assert set(SECRET_OPTIONS) <= names


@pytest.mark.parametrize(("option", "value", "expected"), [
    ("event_key", "s3cr3t-ek-0123456789", "****************6789"),
    ("heartbeat", "s3cr3t-hb-abcdefgh", "**************efgh"),
    ("integration_key", "s3cr3t-ik-abcdefgh", "**************efgh"),
    ("http_token", "s3cr3t-token-0123", "********"),
    ("http_token", ["s3cr3t-one-0123", "s3cr3t-two-4567"], ["********", "********"]),
    ("mqtt_password", "s3cr3t-mqtt", "********"),
    ("ilert_api_key", "s3cr3t-api-0123456", "********"),
    ("kafka_group_id", "not-a-secret", "not-a-secret"),
    ("http_token", None, None),
])
def test_keys_keep_their_last_four_and_the_rest_is_hidden_whole(option: str, value: object,
                                                                 expected: object) -> None:
    """How a value is shown follows the option's kind: a key keeps its last 4 characters,
    a password or a token is hidden whole, other options are shown as they are."""
    assert shown(option, value) == expected


@pytest.mark.parametrize(("name", "secret"), [
    ("sasl.password", True), ("ssl.key.password", True), ("sasl.oauthbearer.config", True),
    ("sasl.oauthbearer.client.secret", True), ("ssl.key.pem", True), ("sasl.jaas.config", True),
    ("ssl.keystore.password", True),
    ("sasl.oauthbearer.assertion.private.key.passphrase", True),
    ("security.protocol", False), ("sasl.username", False), ("ssl.ca.location", False),
    ("ssl.key.location", False), ("sasl.mechanism", False),
    ("sasl.oauthbearer.token.endpoint.url", False),
])
def test_secret_librdkafka_properties_are_known_by_name(name: str, secret: bool) -> None:
    """Every property librdkafka takes a secret in counts as secret (``sasl.oauthbearer.config``
    too); locations and URLs do not."""
    assert is_secret_property(name) is secret


def test_a_registered_key_keeps_its_last_four_characters_in_log_lines() -> None:
    """A key registered as a key is masked like ilert's keys, whatever its shape."""
    key = fresh("key")
    assert register_secret(key, key=True)
    line = MaskingFormatter("%(message)s").format(
        logging.LogRecord("t", logging.WARNING, __file__, 1, "ping %s failed", (key,), None))
    assert key not in line and line == f"ping {mask_key(key)} failed"


def test_a_value_shorter_than_8_characters_is_not_masked_by_value() -> None:
    """A secret "latest" registered would mangle every "latest" in the logs: it is refused."""
    assert not register_secret("test")
    assert not register_secret("latest1")
    assert hide_secrets("offset reset: latest (test)") == "offset reset: latest (test)"


def test_registration_warns_about_a_short_value_by_option_name_only() -> None:
    """One WARNING for each option whose value is too short to mask names the option, never
    the value; a long value is registered silently."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(MaskingFormatter("%(levelname)s %(message)s"))
    handler.addFilter(RepeatFilter())  # as in the daemon: one warning per option all the same
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        long = fresh("token")
        register_secrets([("http_token", "t0k3n"), ("mqtt_password", long),
                          ("http_token", "t0k3n"), ("sasl.password", "pw"),
                          ("kafka_group_id", "g")])
    finally:
        root.removeHandler(handler)
    text = stream.getvalue()
    assert text.count("WARNING") == 2, text
    assert "--http_token" in text and "librdkafka property sasl.password" in text
    assert "t0k3n" not in text and " pw " not in text
    assert hide_secrets(f"password {long}") == "password ********"


def test_the_daemon_configuration_names_every_secret_and_its_repr_shows_none(
        tmp_path: object) -> None:
    """secrets_of(config) finds each secret the daemon was given (the Kafka properties too),
    and repr(config) shows none of them: keys with their last 4 characters only."""
    given = {name: fresh(name) for name in ("http_token", "heartbeat", "event_key",
                                            "ilert_api_key", "kafka_sasl_password",
                                            "kafka_ssl_key_password", "mqtt_password")}
    oauth = f"principal={fresh('oauth')}"
    argv = ["daemon", "-p", "8977", "--kafka_brokers", "b:9092", "-e", "t", "-m", "h",
            "--mqtt_qos", "1", "--mqtt_username", "u",
            "--kafka_config", f"sasl.oauthbearer.config={oauth}"]
    for name, value in given.items():
        argv += [f"--{name}", value]
    parser = build_parser()
    args = parser.parse_args(argv)
    config = daemon_config(args, resolve_options(parser, args, argv, environ={}))
    found = dict(secrets_of(config))
    assert set(given.values()) | {oauth} <= {v for _, v in secrets_of(config)}
    assert found["event_key"] == given["event_key"]
    text = repr(config)
    for value in [*given.values(), oauth]:
        assert value not in text and value[-8:] not in text
    assert mask_key(given["event_key"]) in text and mask_key(given["heartbeat"]) in text


def test_kinds_are_key_or_whole() -> None:
    """Every listed option is either a key (last 4 shown) or hidden whole."""
    assert set(SECRET_OPTIONS.values()) <= {KEY, WHOLE}
