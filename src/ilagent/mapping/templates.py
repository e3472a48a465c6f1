"""Templates of a route's event fields: Jinja2, sandboxed, compiled once from the config (pure).

Jinja2 because SREs know it from Grafana OnCall, Ansible and Salt; its
``ImmutableSandboxedEnvironment`` so a template can read the message and never change or call
into anything, with autoescape off (ilert's fields are text, not HTML). Only the config holds
templates: message content is data handed to them, never compiled or evaluated itself.

What a template sees: ``payload`` (the message's JSON object; dot paths as
``payload.machine.line``), ``topic``, ``message_key`` (Kafka; ``""`` otherwise), ``source``
(``kafka`` or ``mqtt``) and ``route`` (the route's name). A field the message does not have
renders as ``""`` (``ChainableUndefined``, so ``payload.a.b.c`` of a missing ``a`` is ``""``
too) unless a ``default`` filter says otherwise (``{{ payload.text | default("alarm") }}``);
each missing field is noted, so the route can count it. Objects and arrays render as JSON,
``true``/``false``/``null`` as in JSON. Besides Jinja2's own filters (``upper``, ``lower``,
``truncate``, ``replace``, ``default`` …), two are added: ``json`` (compact JSON of any value)
and ``timestamp`` (epoch seconds or milliseconds, or an ISO 8601 string, formatted with
``strftime``; default ``%Y-%m-%d %H:%M:%S UTC``, and the value unchanged when it is none of
those).

A template that fails while rendering (``{{ payload.n + "x" }}``) does not stop the event: the
caller sends a fallback text and counts the error (:class:`RenderError`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import jinja2
import jinja2.meta
import jinja2.runtime
import orjson
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ilagent.errors import ConfigError

__all__ = ["RenderError", "Rendered", "Template", "compile_template"]

VARIABLES = frozenset({"payload", "topic", "message_key", "source", "route"})
DEFAULT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"
_MS_AFTER = 100_000_000_000  # an epoch above this is in milliseconds (year 5138 in seconds)


class RenderError(Exception):
    """A template failed on this message; ``str()`` says why."""


class _Missing(jinja2.ChainableUndefined):
    """An absent field: renders as ``""`` and notes its name in the render's list."""

    __slots__ = ()

    def __str__(self) -> str:
        noted: list[str] | None = getattr(_RENDER, "missing", None)
        if noted is not None:
            noted.append(self._undefined_name or "?")
        return ""


_RENDER = threading.local()  # .missing: the names the render in progress did not find


def _finalize(value: Any) -> Any:
    """How a value prints: JSON for objects, arrays, booleans and null; others as they are."""
    if isinstance(value, (dict, list, bool)) or value is None:
        return orjson.dumps(value).decode() if value is not None else ""
    return value


def _json(value: Any) -> str:
    if isinstance(value, jinja2.Undefined):
        return "null"
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return str(value)


def _timestamp(value: Any, fmt: str = DEFAULT_TIME_FORMAT) -> Any:
    """Epoch seconds/milliseconds or ISO 8601 text as ``fmt`` (UTC); others unchanged."""
    moment: datetime | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        seconds = value / 1000 if abs(value) >= _MS_AFTER else value
        try:
            moment = datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment is None:
        return value
    try:
        return moment.strftime(str(fmt))
    except ValueError:
        return value


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        autoescape=False, undefined=_Missing, finalize=_finalize, keep_trailing_newline=False,
        auto_reload=False, cache_size=0)
    env.filters["json"] = _json
    env.filters["timestamp"] = _timestamp
    return env


_ENV = _environment()


Scope = jinja2.runtime.Context


def scope(variables: Mapping[str, Any]) -> Scope:
    """One message's variables, made ready once for every template of its event (a context of
    its own per template costs more than the render of most)."""
    return jinja2.runtime.new_context(_ENV, "route", {}, dict(variables), True, _ENV.globals)


class Rendered(str):
    """A rendered text, with the fields the message did not have (``missing``)."""

    missing: tuple[str, ...] = ()


class Template:
    """One compiled template of a route's field; ``render()`` never evaluates message content."""

    __slots__ = ("_compiled", "plain", "source")

    def __init__(self, source: str, compiled: jinja2.Template | None) -> None:
        self.source = source
        self._compiled = compiled
        self.plain = compiled is None  # no ``{{``/``{%``: the text itself, nothing to render

    def __repr__(self) -> str:
        return f"Template({self.source!r})"

    def render(self, context: Mapping[str, Any] | Scope) -> Rendered:
        """The text for this message (its variables, or a :func:`scope` of them shared by the
        templates of one event); raises :class:`RenderError` when the template fails."""
        if self._compiled is None:
            return Rendered(self.source)
        if not isinstance(context, Scope):
            context = scope(context)
        notes: list[str] = []
        _RENDER.missing = notes
        try:
            text = Rendered(_ENV.concat(self._compiled.root_render_func(context)))
        except Exception as exc:  # any failure of a user's template on this message
            raise RenderError(f"{type(exc).__name__}: {exc}") from None
        finally:
            _RENDER.missing = None
        if notes:
            text.missing = tuple(dict.fromkeys(notes))
        return text


def compile_template(source: Any, where: str) -> Template:
    """A template from the config, checked now; ``ConfigError`` naming ``where`` if it is not
    a string or not a valid template."""
    if not isinstance(source, str):
        raise ConfigError(f"{where} must be a string (a template)")
    if "{{" not in source and "{%" not in source and "{#" not in source:
        return Template(source, None)
    try:
        unknown = sorted(jinja2.meta.find_undeclared_variables(_ENV.parse(source)) - VARIABLES)
        compiled = _ENV.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"{where}: template error on its line {exc.lineno}: "
                          f"{exc.message}") from None
    if unknown:  # {{ mCode }} for {{ payload.mCode }}: the commonest slip, always empty
        raise ConfigError(f"{where}: {unknown[0]!r} is not a template variable: the message's "
                          f"fields are under payload ({{{{ payload.{unknown[0]} }}}}); the "
                          f"variables are {', '.join(sorted(VARIABLES))}")
    return Template(source, compiled)
