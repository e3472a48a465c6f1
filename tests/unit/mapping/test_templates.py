"""Templates of route fields: missing fields, non-string values, unicode, filters, failures, and
message content that is only ever data."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ilagent.errors import ConfigError
from ilagent.mapping.templates import RenderError, compile_template

PAYLOAD = {"machine": {"line": 3, "code": "M1"}, "text": "door open", "n": 7, "on": True,
           "none": None, "list": [1, "a"], "ts_s": 1764730680, "ts_ms": 1764730680123,
           "iso": "2025-12-03T02:58:00Z", "name": "Ünïcødé ✓ 警报", "empty": ""}


def render(source: str, payload: Any = None, **context: Any) -> tuple[str, tuple[str, ...]]:
    rendered = compile_template(source, "test").render(
        {"payload": PAYLOAD if payload is None else payload, "topic": "plant", **context})
    return str(rendered), rendered.missing


@pytest.mark.parametrize(("source", "text", "missing"), [
    ("plain text", "plain text", ()),
    ("{{ payload.text }}", "door open", ()),
    ("Line {{ payload.machine.line }} / {{ payload.machine.code }}", "Line 3 / M1", ()),
    # missing fields render empty and are named, however deep the path breaks off
    ("[{{ payload.absent }}]", "[]", ("absent",)),
    ("[{{ payload.absent.deeper.still }}]", "[]", ("absent",)),
    ("[{{ payload.machine.absent }}]", "[]", ("absent",)),
    # a default says what a missing field is, and then it is not missing
    ("{{ payload.absent | default('n/a') }}", "n/a", ()),
    ("{{ payload.machine.absent | default('n/a') }}", "n/a", ()),
    # values that are not strings print as JSON would show them
    ("{{ payload.n }}", "7", ()),
    ("{{ payload.on }}", "true", ()),
    ("[{{ payload.none }}]", "[]", ()),
    ("{{ payload.list }}", '[1,"a"]', ()),
    ("{{ payload.machine }}", '{"line":3,"code":"M1"}', ()),
    ("{{ payload.machine | json }}", '{"line":3,"code":"M1"}', ()),
    ("{{ payload.absent | json }}", "null", ()),
    # unicode stays as it is; upper/lower know it
    ("{{ payload.name }}", "Ünïcødé ✓ 警报", ()),
    ("{{ payload.name | upper }}", "ÜNÏCØDÉ ✓ 警报", ()),
    ("{{ payload.text | truncate(8, true, '…', 0) }}", "door op…", ()),
    # timestamps: epoch seconds, milliseconds, ISO 8601; anything else unchanged
    ("{{ payload.ts_s | timestamp }}", "2025-12-03 02:58:00 UTC", ()),
    ("{{ payload.ts_ms | timestamp('%H:%M:%S') }}", "02:58:00", ()),
    ("{{ payload.iso | timestamp('%H:%M') }}", "02:58", ()),
    ("{{ payload.text | timestamp }}", "door open", ()),
    ("{{ topic }}", "plant", ()),
])
def test_rendering(source: str, text: str, missing: tuple[str, ...]) -> None:
    assert render(source) == (text, missing)


@pytest.mark.parametrize("source", [
    "{{ payload.n + 'x' }}",  # a type error on this message
    "{{ payload.text | timestamp(5) }}{{ 1 / 0 }}",
    "{{ payload.machine.update({'x': 1}) }}",  # immutable: no method may change the message
])
def test_a_template_that_fails_on_a_message_raises_render_error(source: str) -> None:
    with pytest.raises(RenderError):
        render(source)


@pytest.mark.parametrize("source", [
    "{{ payload.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ payload.text.__globals__ }}",
])
def test_the_sandbox_refuses_python_internals(source: str) -> None:
    try:
        text, _missing = render(source)
    except RenderError:
        return
    assert "class" not in text and "object" not in text


@pytest.mark.parametrize(("source", "said"), [
    ("{{ payload.x ", "template error on its line 1"),
    ("{% if %}", "template error"),
    ("{{ payload | nosuchfilter }}", "nosuchfilter"),
    # the commonest slip: a field without payload. in front, which would always be empty
    ("{{ mCode }}", r"'mCode' is not a template variable: the message's fields are under "
                    r"payload \(\{\{ payload.mCode \}\}\)"),
])
def test_a_template_that_does_not_compile_is_a_config_error(source: str, said: str) -> None:
    with pytest.raises(ConfigError, match=said) as caught:
        compile_template(source, "route 1 (line3): summary")
    assert str(caught.value).startswith("route 1 (line3): summary")


def test_a_template_must_be_a_string() -> None:
    with pytest.raises(ConfigError, match="must be a string"):
        compile_template(3, "route 1: summary")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",))),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=20)
# text that would do something if anything evaluated message content as a template (7777*7 is
# 54439: five digits in a row, which no date the timestamp filter writes can hold)
ACTIVE = st.sampled_from(["{{ 7777*7 }}", "{% for x in range(9) %}x{% endfor %}",
                          "{{ ''.__class__ }}", "{{ payload }}", "${7777*7}", "{#", "}}"])
SOURCES = ["{{ payload.a }}|{{ payload.b.c }}|{{ payload.a | upper }}",
           "{{ payload.a | default('d') | truncate(10) }}", "{{ payload | json }}",
           "{{ payload.b | json }} {{ payload.a | timestamp }}",
           "{{ payload.a | lower }}{{ payload.z.y.x }}"]


@settings(max_examples=300, deadline=None)
@given(a=st.one_of(JSON, ACTIVE), b=st.one_of(JSON, st.dictionaries(st.just("c"), ACTIVE)),
       extra=JSON, source=st.sampled_from(SOURCES))
def test_no_message_content_raises_or_is_evaluated(a: Any, b: Any, extra: Any,
                                                   source: str) -> None:
    """Whatever a message holds, a template renders it as data: never an exception other than
    RenderError (which the route turns into a fallback text), never an evaluation."""
    payload = {"a": a, "b": b, "extra": extra}
    try:
        text, _missing = render(source, payload)
    except RenderError:
        return
    assert "54439" not in text or "54439" in repr(payload)
    assert "xxxxxxxxx" not in text or "xxxxxxxxx" in repr(payload)
    assert "<class" not in text
