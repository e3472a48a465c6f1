"""TLS for the MQTT connection: the SSL context from the PEM files, and their fingerprint.

The files are read again for every connection attempt, and watched: the connection polls
their fingerprint every ``--mqtt_cert_reload`` seconds and reconnects with the new files once
they changed and load (a half-written or broken set is reported and the connection kept).
Without ``--mqtt_ca`` the system's trusted CAs verify the broker. There is no option to skip
verification.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl

from ilagent.config import MqttSettings

logger = logging.getLogger(__name__)


class TlsFilesError(Exception):
    """A certificate, key or CA file cannot be read or used."""


def files(settings: MqttSettings) -> tuple[str, ...]:
    """The PEM files the TLS settings name."""
    return tuple(p for p in (settings.ca, settings.client_cert, settings.client_key) if p)


def fingerprint(settings: MqttSettings) -> str:
    """A digest over the contents of the TLS files ("" when a file cannot be read)."""
    digest = hashlib.sha256()
    for path in files(settings):
        try:
            with open(path, "rb") as handle:
                digest.update(handle.read())
        except OSError:
            return ""
        digest.update(b"\0")
    return digest.hexdigest()


def context(settings: MqttSettings) -> ssl.SSLContext:
    """A client SSL context verifying the broker (and presenting the client certificate)."""
    try:
        ctx = ssl.create_default_context(cafile=settings.ca)
        if settings.client_cert and settings.client_key:
            ctx.load_cert_chain(settings.client_cert, settings.client_key)
    except FileNotFoundError as exc:
        raise TlsFilesError(f"{exc.filename}: no such file") from None
    except OSError as exc:  # ssl.SSLError is an OSError
        raise TlsFilesError(_describe(exc)) from None
    return ctx


def _describe(exc: OSError) -> str:
    reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{reason}".replace("_", " ").lower()


async def changed(settings: MqttSettings, active: str) -> bool:
    """True when the TLS files changed since ``active`` (their fingerprint then) and the new
    set loads; a broken set is reported and counts as unchanged."""
    new = await asyncio.to_thread(fingerprint, settings)
    if not new or new == active:
        return False
    try:
        await asyncio.to_thread(context, settings)
    except TlsFilesError as exc:
        logger.warning("the MQTT TLS files changed but cannot be used (%s); keeping the "
                       "connection", exc)
        return False
    logger.info("the MQTT TLS files changed: reconnecting with them")
    return True
