"""Loading ``[[route]]`` tables: each setting checked, one clear ``ConfigError`` for the first
thing wrong, naming the file, the route and the setting (see :mod:`ilagent.mapping.routes`)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ilagent.errors import ConfigError
from ilagent.events import EVENT_TYPES, PRIORITIES
from ilagent.mapping.messages import FLAG_ROUTE, MISSING, json_needle
from ilagent.mapping.routes import LIST_FIELDS, TEXT_FIELDS, Condition, Route, ValueMap
from ilagent.mapping.templates import Template, compile_template
from ilagent.mapping.topics import kafka_topics, mqtt_filters

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_KEYS = {"name", "kafka_topics", "mqtt_topics", "match", "integration_key",
         "integration_key_field", "event_type", "priority", "labels", "custom_details",
         *TEXT_FIELDS, *LIST_FIELDS}


def load_routes(entries: Any, *, where: str) -> tuple[Route, ...]:
    """The ``[[route]]`` tables of a config file, checked; ``ConfigError`` naming the route
    and the setting for the first thing wrong."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{where}: route must be an array of tables ([[route]])")
    routes: list[Route] = []
    for index, entry in enumerate(entries):
        name = entry.get("name")
        at = f"{where}: route {index + 1}" + (f" ({name})" if isinstance(name, str) else "")
        routes.append(_route(entry, at))
    names = [r.name for r in routes]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"{where}: route name {', '.join(twice)} is used twice")
    return tuple(routes)


def _route(entry: Mapping[str, Any], at: str) -> Route:
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise ConfigError(f"{at}: unknown setting {', '.join(map(repr, unknown))} (known: "
                          f"{', '.join(sorted(_KEYS))})")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"{at}: name must be 1-64 letters, digits, '.', '_' or '-'")
    if name == FLAG_ROUTE:
        raise ConfigError(f"{at}: the name {FLAG_ROUTE!r} is the mapping flags' route")
    kafka = _strings(entry, "kafka_topics", at)
    mqtt = _strings(entry, "mqtt_topics", at)
    key = entry.get("integration_key")
    key_field = entry.get("integration_key_field")
    for setting, value in (("integration_key", key), ("integration_key_field", key_field)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(f"{at}: {setting} must be a non-empty string")
    if key is not None and key_field is not None:
        raise ConfigError(f"{at}: give integration_key or integration_key_field, not both")
    texts = {target: compile_template(entry[option], f"{at}: {option}")
             for option, target in TEXT_FIELDS.items() if option in entry}
    labels = entry.get("labels", {})
    if not isinstance(labels, dict):
        raise ConfigError(f"{at}: labels must be a table of name = template")
    try:
        kafka_matcher = kafka_topics(kafka) if kafka else None
    except ConfigError as exc:
        raise ConfigError(f"{at}: {exc}") from None
    return Route(
        name=name, kafka=kafka_matcher,
        mqtt=mqtt_filters(mqtt) if mqtt else None, kafka_topics=kafka, mqtt_topics=mqtt,
        conditions=_conditions(entry.get("match", []), at), integration_key=key,
        key_field=key_field,
        event_type=_rule(entry.get("event_type"), "event_type", EVENT_TYPES, at),
        priority=_rule(entry.get("priority"), "priority", PRIORITIES, at), texts=texts,
        labels={str(k): compile_template(v, f"{at}: labels.{k}") for k, v in labels.items()},
        lists={option: _items(entry[option], option, at) for option in LIST_FIELDS
               if option in entry},
        custom_details=_details_rule(entry.get("custom_details"), at))


def _strings(entry: Mapping[str, Any], option: str, at: str) -> tuple[str, ...]:
    value = entry.get(option, [])
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
        raise ConfigError(f"{at}: {option} must be a list of non-empty strings")
    return tuple(items)


def _conditions(value: Any, at: str) -> tuple[Condition, ...]:
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(f"{at}: match must be a list of {{ path = …, equals|in|exists = … }}")
    conditions = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str) \
                or len(set(item) - {"path"}) != 1:
            raise ConfigError(f"{at}: each match condition is {{ path = \"a.b\", and one of "
                              f"equals = value, in = [values], exists = true|false }}")
        path = item["path"]
        (test, wanted), = ((k, v) for k, v in item.items() if k != "path")
        conditions.append(_condition(path, test, wanted, at))
    return tuple(conditions)


def _condition(path: str, test: str, wanted: Any, at: str) -> Condition:
    if test == "equals" and _json_scalar(wanted):
        return Condition(path, lambda v: _same(v, wanted), f"{path} = {wanted!r}",
                         _needles(path, [wanted]))
    if test == "in" and isinstance(wanted, list) and all(map(_json_scalar, wanted)):
        return Condition(path, lambda v: any(_same(v, w) for w in wanted),
                         f"{path} in {wanted!r}", _needles(path, wanted))
    if test == "exists" and isinstance(wanted, bool):
        return Condition(path, lambda v: (v is not MISSING) is wanted,
                         f"{path} {'exists' if wanted else 'absent'}",
                         _needles(path, []) if wanted else None)
    raise ConfigError(f"{at}: match on {path!r}: {test} = {wanted!r} is not equals = <string, "
                      "number or boolean>, in = [<those>] or exists = true|false")


def _needles(path: str, values: list[Any]) -> tuple[bytes, tuple[bytes, ...]] | None:
    """What the raw bytes of a message must hold for the condition to hold: the path's last
    key, and one of ``values`` (none: the key alone); None unless every one of them is a
    string JSON writes without an escape (a number has several spellings: 3, 3.0, 3e0)."""
    key = json_needle(path.rsplit(".", 1)[-1])
    found = [json_needle(value) if isinstance(value, str) else None for value in values]
    if key is None or None in found:
        return None
    return key, tuple(needle for needle in found if needle is not None)


def _json_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _same(value: Any, wanted: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, ``1`` is ``1.0``."""
    return (isinstance(value, bool) == isinstance(wanted, bool)
            and isinstance(value, str) == isinstance(wanted, str)
            and value is not MISSING and value == wanted)


def _rule(value: Any, option: str, allowed: Sequence[str], at: str) -> ValueMap | Template | None:
    """``event_type``/``priority``: a constant or template, or a value map."""
    if value is None:
        return None
    if isinstance(value, str):
        if "{" not in value and value not in allowed:
            raise ConfigError(f"{at}: {option} {value!r} is not one of {', '.join(allowed)}")
        return compile_template(value, f"{at}: {option}")
    if not isinstance(value, dict) or not isinstance(value.get("path"), str):
        raise ConfigError(f"{at}: {option} is a string or {{ path = …, "
                          f"{' = …, '.join(a.lower() for a in allowed)} = …, default = … }}")
    values: dict[Any, str] = {}
    for name, raw in value.items():
        if name in ("path", "default"):
            continue
        if name.upper() not in allowed:
            raise ConfigError(f"{at}: {option}.{name}: not one of "
                              f"{', '.join(a.lower() for a in allowed)}, path, default")
        for item in raw if isinstance(raw, list) else [raw]:
            if not _json_scalar(item):
                raise ConfigError(f"{at}: {option}.{name} must be values or a list of them")
            values[item] = name.upper()
    default = value.get("default")
    if default is not None and default not in allowed:
        raise ConfigError(f"{at}: {option}.default {default!r} is not one of "
                          f"{', '.join(allowed)}")
    return ValueMap(value["path"], values, default)


def _items(value: Any, option: str, at: str) -> tuple[Mapping[str, Template], ...]:
    required, parts = LIST_FIELDS[option]
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(i, dict) and required in i
                                              and set(i) <= set(parts) for i in value):
        raise ConfigError(f"{at}: {option} must be a list of {{ {', '.join(parts)} }} "
                          f"with {required}")
    return tuple({part: compile_template(text, f"{at}: {option}.{part}")
                  for part, text in item.items()} for item in value)


def _details_rule(value: Any, at: str) -> Any:
    if value is None or value == "payload":
        return value
    if isinstance(value, dict) and set(value) == {"path"} and isinstance(value["path"], str):
        return ("path", value["path"])
    if isinstance(value, dict) and set(value) == {"pick"} and isinstance(value["pick"], list) \
            and all(isinstance(p, str) for p in value["pick"]):
        return ("pick", tuple(value["pick"]))
    raise ConfigError(f"{at}: custom_details is \"payload\", {{ path = \"a.b\" }} or "
                      "{ pick = [\"a\", \"b.c\"] }")
