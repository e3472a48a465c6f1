"""Keys never reach a log line in clear, not even inside a traceback."""

from __future__ import annotations

import io
import logging

from ilagent.logs import MaskingFormatter, RepeatFilter, mask_key, register_secret


def test_tracebacks_are_masked() -> None:
    """A key inside an exception message is masked in the formatted traceback."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(MaskingFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("test-masking")
    logger.addHandler(handler)
    logger.propagate = False
    key = "il1apiSECRETSECRET1234"
    try:
        raise RuntimeError(f"could not send for {key}")
    except RuntimeError:
        logger.exception("failed for %s", key)
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "Traceback" in text and key not in text
    assert text.count(mask_key(key)) == 2


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(msg: str, *args: object, level: int = logging.WARNING,
           name: str = "ilagent.delivery", each: bool = False) -> logging.LogRecord:
    rec = logging.LogRecord(name, level, __file__, 1, msg, args or None, None)
    if each:
        rec.each = True
    return rec


def test_repeated_warnings_are_summarised_once_per_interval() -> None:
    """A thousand failures of one kind in 30 s: the first is logged, the next one after 30 s
    carries the count of those held back."""
    clock = Clock()
    summary = RepeatFilter(interval=30.0, clock=clock)
    passed = []
    for n in range(1000):
        rec = record("attempt %d for %s failed: %s", n, f"queue#{n}", "503")
        if summary.filter(rec):
            passed.append(rec.getMessage())
        clock.now += 0.02
    clock.now += 30
    last = record("attempt %d for %s failed: %s", 1000, "queue#1000", "503")
    assert summary.filter(last)
    passed.append(last.getMessage())
    assert len(passed) == 2
    assert passed[-1].endswith("(and 999 more like it in the last 50 s)")


def test_librdkafka_lines_differing_in_numbers_are_one_kind() -> None:
    """Pre-formatted lines are grouped with their numbers ignored (ports, milliseconds)."""
    clock = Clock()
    summary = RepeatFilter(clock=clock)
    lines = [f"FAIL [thrd:127.0.0.1:{9000 + n}/bootstrap]: Connect failed (after {n} ms)"
             for n in range(50)]
    assert [summary.filter(record(line, name="ilagent.librdkafka")) for line in lines].count(
        True) == 1


def test_other_kinds_and_dead_letters_always_pass() -> None:
    """Different templates are different kinds; a line marked each=True is never held back;
    INFO lines are not summarised."""
    summary = RepeatFilter(clock=Clock())
    assert summary.filter(record("one %s", "a")) and summary.filter(record("two %s", "a"))
    assert all(summary.filter(record("dead letter %s", n, level=logging.ERROR, each=True))
               for n in range(10))
    assert all(summary.filter(record("delivered %s", n, level=logging.INFO)) for n in range(10))


def test_registered_secrets_are_hidden_whole() -> None:
    """A password registered once never appears, not even its last characters."""
    register_secret("hunter2-sasl-password")
    line = MaskingFormatter("%(message)s").format(record("login with %s", "hunter2-sasl-password"))
    assert line == "login with ********"


def test_control_bytes_of_a_payload_are_escaped() -> None:
    """A NUL or a terminal escape copied from a payload is shown escaped (grep keeps treating
    the log as text); tabs and line breaks of tracebacks stay."""
    formatter = MaskingFormatter("%(message)s")
    record = logging.LogRecord("ilagent", logging.ERROR, __file__, 1,
                               "dead letter %s", ("{\"x\": \"\x00\x1b[31m\x7f\"}\tend\nnext",),
                               None)
    assert formatter.format(record) == '''dead letter {"x": "\\x00\\x1b[31m\\x7f"}\tend\nnext'''


def test_filtered_messages_are_logged_each_while_rare_then_once_per_interval() -> None:
    """Sampled: the first line at once; within the interval only counted; the next line after
    it carries the count; nothing below INFO."""
    from ilagent.logs import Sampled

    now = [0.0]
    stream = io.StringIO()
    logger = logging.getLogger("ilagent.test.sampled")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        filtered = Sampled(logger, "filtered %s: %s", interval=30.0, clock=lambda: now[0])
        filtered("t[0]@1", "no 'type' key")
        for n in range(5):
            now[0] = 1.0 + n
            filtered(f"t[0]@{n + 2}", "no 'type' key")
        now[0] = 40.0
        filtered("t[0]@9", "'type' is not 'ALARM'")
        logger.setLevel(logging.WARNING)
        filtered("t[0]@10", "quiet")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue().splitlines() == [
        "filtered t[0]@1: no 'type' key",
        "filtered t[0]@9: 'type' is not 'ALARM' (and 5 more in the last 30 s)"]
