"""Keys never reach a log line in clear, not even inside a traceback."""

from __future__ import annotations

import io
import logging

from ilagent.logs import MaskingFormatter, mask_key


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
