"""Logging set-up: secrets masked in every line, repeated warnings summarised, not repeated.

* **Masking** happens in the formatter, so it covers tracebacks and librdkafka's own lines:
  anything shaped like an ilert key keeps its last 4 characters, and every secret registered
  with :func:`register_secret` is masked by value, whatever its shape: a key keeps its last 4
  characters, a password or token is replaced whole. Values shorter than
  :data:`MIN_SECRET_LENGTH` are not registered: masking "test" would mangle "latest".
* **Summaries.** A warning or error of a kind seen in the last :data:`SUMMARY_INTERVAL` seconds
  is held back and counted; the next one of its kind after the interval carries the count. A
  night-long outage writes one line per kind per 30 s, not thousands. Lines that must appear
  once per message (dead letters) pass ``extra={"each": True}`` and are never held back.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable

SUMMARY_INTERVAL = 30.0
EACH = {"each": True}  # ``extra=`` of a line that must appear once per message, never summarised
MAX_KINDS = 1000
MIN_SECRET_LENGTH = 8  # shorter values are not masked by value (they would mangle words)
HIDDEN = "********"
_SECRETS: dict[str, str] = {}  # secret → what is shown instead, longest secrets first
_DIGITS = re.compile(r"\d+")

# ilert keys look like il1api…, il1hbt…, il1rtk…, ih2:…; mask anything of that shape in free text
_KEY_PATTERN = re.compile(r"\b(il1[a-z]{3}[A-Za-z0-9._\-]{4,}|ih2:[A-Za-z0-9:._\-]{6,})")


def mask_key(key: str | None) -> str:
    """A key with all but its last 4 characters replaced by ``*``."""
    if not key:
        return "<none>"
    if len(key) <= 4:
        return "*" * len(key)
    return "*" * (len(key) - 4) + key[-4:]


def mask(text: str, *secrets: str | None) -> str:
    """``text`` with the given secrets and anything shaped like an ilert key masked."""
    for secret in secrets:
        if secret and len(secret) > 4:
            text = text.replace(secret, mask_key(secret))
    return _KEY_PATTERN.sub(lambda m: mask_key(m.group(0)), text)


def register_secret(value: str | None, *, key: bool = False) -> bool:
    """Never print ``value`` in any log line: replaced whole, or (``key``) all but its last 4
    characters. False when it is empty or too short to be masked by value."""
    global _SECRETS
    if not value or len(value) < MIN_SECRET_LENGTH:
        return False
    if value not in _SECRETS or not key:  # hidden whole wins over a key's last 4 characters
        # a new mapping, swapped in whole: other threads may be formatting a line meanwhile;
        # longest first, so a secret inside a longer one cannot break the longer one's mask
        secrets = {**_SECRETS, value: mask_key(value) if key else HIDDEN}
        _SECRETS = dict(sorted(secrets.items(), key=lambda item: -len(item[0])))
    return True


def hide_secrets(text: str) -> str:
    """``text`` with every registered secret masked and ilert keys masked."""
    for secret, shown in _SECRETS.items():  # the mapping is never changed in place
        if secret in text:
            text = text.replace(secret, shown)
    return mask(text)


class MaskingFormatter(logging.Formatter):
    """Last line of defence: masks secrets in every formatted line, tracebacks and librdkafka's
    own messages included, and escapes control bytes a payload may carry (a NUL would make
    the log a "binary file" to grep; an escape sequence would move the terminal)."""

    def format(self, record: logging.LogRecord) -> str:
        return _CONTROL.sub(_escaped, hide_secrets(super().format(record)))


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # all but tab and line feed


def _escaped(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group(0)):02x}"


class RepeatFilter(logging.Filter):
    """Lets the first warning of a kind through, then one per interval with the held-back count.

    A kind is the logger, the level and the message template (numbers in a pre-formatted
    message, like librdkafka's, do not make a new kind).
    """

    def __init__(self, interval: float = SUMMARY_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._interval = interval
        self._clock = clock
        self._kinds: dict[tuple[str, int, str], list[float]] = {}  # kind → [since, held back]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or getattr(record, "each", False):
            return True
        template = str(record.msg) if record.args else _DIGITS.sub("#", str(record.msg))
        kind = (record.name, record.levelno, template)
        now = self._clock()
        seen = self._kinds.get(kind)
        if seen is not None and now - seen[0] < self._interval:
            seen[1] += 1
            return False
        if len(self._kinds) >= MAX_KINDS:
            self._kinds = {k: v for k, v in self._kinds.items() if now - v[0] < self._interval}
        self._kinds[kind] = [now, 0.0]
        if seen is not None and seen[1]:
            record.msg = (f"{record.getMessage()} (and {int(seen[1])} more like it in the "
                          f"last {now - seen[0]:.0f} s)")
            record.args = None
        return True


def level_for(verbosity: int) -> int:
    """ilagent's ``-v`` scale: none or one → WARNING, two → INFO, three or more → DEBUG."""
    if verbosity >= 3:
        return logging.DEBUG
    if verbosity == 2:
        return logging.INFO
    return logging.WARNING


def setup(verbosity: int) -> None:
    """Log to stderr at the level ``-v`` asks for, with key masking."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S%z")
    )
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level_for(verbosity))
    # aiohttp's access log is noisy at INFO; keep it for -vvv
    logging.getLogger("aiohttp.access").setLevel(
        logging.DEBUG if verbosity >= 3 else logging.WARNING
    )


class Sampled:
    """INFO lines for a frequent, expected event (a filtered message): each one while they are
    rare, at most one per ``interval`` when they are not, saying how many were not shown."""

    def __init__(self, logger: logging.Logger, template: str, *,
                 interval: float = SUMMARY_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._template = template
        self._interval = interval
        self._clock = clock
        self._last: float | None = None
        self._held = 0

    def __call__(self, *args: object) -> None:
        """Log ``template % args`` now, or count it towards the next line."""
        if self.wanted():
            self.write(*args)

    def wanted(self) -> bool:
        """True when a line is due now (then :meth:`write` it); otherwise the event is counted
        towards the next line. For callers whose arguments cost something to make."""
        if not self._logger.isEnabledFor(logging.INFO):
            return False
        now = self._clock()
        if self._last is not None and now - self._last < self._interval:
            self._held += 1
            return False
        self._last = now
        return True

    def count(self, events: int) -> None:
        """``events`` more, all counted towards the next line (a batch's worth at once)."""
        self._held += events

    def write(self, *args: object) -> None:
        """Write the line that :meth:`wanted` said was due."""
        held, self._held = self._held, 0
        if held:
            self._logger.info(self._template + " (and %d more in the last %.0f s)", *args, held,
                              self._interval)
        else:
            self._logger.info(self._template, *args)
