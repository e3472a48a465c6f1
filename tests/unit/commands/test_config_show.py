"""`ilagent config show` never prints a secret, whatever option it came from."""

from __future__ import annotations

import pytest

from ilagent.cli import build_parser
from ilagent.commands.config import _shown

SECRET_WORDS = ("password", "secret", "token", "api_key")
KEYS = ("event_key", "heartbeat")  # ilert integration and heartbeat keys


def secret_options() -> list[str]:
    """The daemon's options (what `config show` lists) whose name says they hold a secret."""
    daemon = build_parser().commands["daemon"]  # type: ignore[attr-defined]
    names = {action.dest for action in daemon._actions if action.option_strings}
    # a *_file option names where a secret is, which is no secret (--http_token_file)
    return sorted(n for n in names if (any(word in n for word in SECRET_WORDS) or n in KEYS)
                  and not n.endswith("_file"))


@pytest.mark.parametrize("name", secret_options())
def test_secret_options_are_masked(name: str) -> None:
    """Passwords, tokens, the API key and integration keys are masked in `config show`."""
    value = "s3cret-value-0123456789"
    assert value not in str(_shown(name, value))


def test_the_list_holds_the_options_that_matter() -> None:
    """The check above looks at every secret the daemon takes."""
    assert {"mqtt_password", "ilert_api_key", "kafka_sasl_password", "kafka_ssl_key_password",
            "http_token", "event_key", "heartbeat"} <= set(secret_options())
