"""Which options hold secrets, and how each is shown: the one list that masking in log lines,
``config show`` and the configuration's repr all derive from.

* A **key** (:data:`KEY`: an integration or heartbeat key) keeps its last 4 characters, as
  ilert shows keys.
* A **password or token** (:data:`WHOLE`) is hidden whole.
* A **librdkafka property** is secret by its name (:func:`is_secret_property`), whichever way
  it came (``--kafka_config``, the TOML file's ``kafka_config`` table, ``--kafka_config_file``).

At start every secret value is registered with :func:`ilagent.logs.register_secret`, so log
lines mask it by value whatever its shape; a value too short to be masked by value (see
:data:`~ilagent.logs.MIN_SECRET_LENGTH`) gets one WARNING naming its option, never the value.
Foundation layer: no I/O, nothing above :mod:`ilagent.logs`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import field, fields, is_dataclass
from types import MappingProxyType
from typing import Any

from ilagent.logs import EACH, HIDDEN, MIN_SECRET_LENGTH, mask_key, register_secret

logger = logging.getLogger(__name__)

KEY = "key"
WHOLE = "whole"
# option (long name, underscores) → how its value is masked; every command's secret options
SECRET_OPTIONS: Mapping[str, str] = MappingProxyType({
    "event_key": KEY,  # daemon and map: the integration key of every event
    "heartbeat": KEY,  # daemon -b: its own heartbeat
    "drill_heartbeat": KEY,  # daemon: the heartbeat fire drills prove (ilagent.drills)
    "integration_key": KEY,  # event and heartbeat -k
    "http_token": WHOLE,
    "ilert_api_key": WHOLE,
    "kafka_sasl_password": WHOLE,
    "kafka_ssl_key_password": WHOLE,
    "mqtt_password": WHOLE,
    "fallback_mqtt_password": WHOLE,
    "fallback_webhook": WHOLE,  # a webhook URL often carries its token (path or query)
    "api_key": WHOLE,  # sandbox: the user API keys it accepts
})
PROPERTIES = "kafka_config"  # marks a field of librdkafka (name, value) pairs
_SECRET = "secret"  # the metadata key of a secret dataclass field

# librdkafka property names that hold secrets: sasl.password, ssl.key.password, ssl.key.pem,
# sasl.oauthbearer.client.secret, sasl.oauthbearer.config, …; never locations or URLs
SECRET_PROPERTY_WORDS = ("password", "passphrase", "secret", "token", "jaas", "key.pem",
                         "private", "credential", "oauthbearer.config")
_NOT_SECRET_ENDINGS = (".url", ".location")
_warned: set[str] = set()


def is_secret_property(name: str) -> bool:
    """True for a librdkafka property that holds a secret (``sasl.password``, …)."""
    lowered = name.lower()
    return (not lowered.endswith(_NOT_SECRET_ENDINGS)
            and any(word in lowered for word in SECRET_PROPERTY_WORDS))


def shown(option: str, value: Any) -> Any:
    """``value`` as an option's value may be shown: a key with its last 4 characters, a
    password or token hidden whole, anything else (and nothing) as it is."""
    kind = SECRET_OPTIONS.get(option)
    if kind is None or not value:
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(shown(option, item) for item in value)
    return mask_key(str(value)) if kind == KEY else HIDDEN


def shown_property(name: str, value: str) -> str:
    """A librdkafka property's value as it may be shown."""
    return HIDDEN if is_secret_property(name) else value


def secret_field(option: str, default: Any = None) -> Any:
    """A dataclass field filled from a secret option (or :data:`PROPERTIES`): masked in
    :func:`masked_repr` and found by :func:`secrets_of`."""
    return field(default=default, metadata={_SECRET: option})


def masked_repr(self: Any) -> str:
    """A dataclass's repr with each secret field shown as its option is shown everywhere."""
    parts = []
    for item in fields(self):
        value = getattr(self, item.name)
        option = item.metadata.get(_SECRET)
        if option == PROPERTIES:
            value = tuple((name, shown_property(name, v)) for name, v in value)
        elif option is not None:
            value = shown(option, value)
        parts.append(f"{item.name}={value!r}")
    return f"{type(self).__name__}({', '.join(parts)})"


def secrets_of(settings: Any) -> Iterator[tuple[str, str]]:
    """``(option or property name, value)`` of every secret in a settings dataclass and in
    those nested in it."""
    for item in fields(settings):
        value = getattr(settings, item.name)
        option = item.metadata.get(_SECRET)
        if option == PROPERTIES:
            yield from ((name, v) for name, v in value if is_secret_property(name) and v)
        elif option is not None:
            for one in value if isinstance(value, (list, tuple)) else (value,):
                if one:
                    yield option, str(one)
        elif is_dataclass(value) and not isinstance(value, type):
            yield from secrets_of(value)


def register_secrets(named: Iterable[tuple[str, Any]], *, warn: bool = True) -> None:
    """Mask each secret by value in every log line from now on; ``named`` pairs an option (or
    a librdkafka property) with its value or values, non-secret names are passed over.

    A value too short to mask gets one WARNING naming the option (with ``warn``)."""
    for name, value in named:
        kind = SECRET_OPTIONS.get(name) or (WHOLE if is_secret_property(name) else None)
        if kind is None:
            continue
        for one in value if isinstance(value, (list, tuple)) else (value,):
            if not one or register_secret(str(one), key=kind == KEY) or not warn:
                continue
            label = f"--{name}" if name in SECRET_OPTIONS else f"the librdkafka property {name}"
            if label not in _warned:
                _warned.add(label)
                logger.warning("%s is shorter than %d characters, too short to be masked in "
                               "log lines (it would mangle ordinary words): use a longer one",
                               label, MIN_SECRET_LENGTH, extra=EACH)  # one per option
