"""Logging set-up and secret masking: integration and API keys never reach a log in clear."""

from __future__ import annotations

import logging
import re
import sys

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


class MaskingFormatter(logging.Formatter):
    """Last line of defence: masks key-shaped strings in every formatted line, tracebacks and
    librdkafka's own messages included."""

    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


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
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level_for(verbosity))
    # aiohttp's access log is noisy at INFO; keep it for -vvv
    logging.getLogger("aiohttp.access").setLevel(
        logging.DEBUG if verbosity >= 3 else logging.WARNING
    )
