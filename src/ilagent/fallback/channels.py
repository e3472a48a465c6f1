"""The fallback's channels: a webhook, mail through a local relay, an MQTT message.

Each sends one :class:`~ilagent.fallback.alarm.Notice` or raises :class:`ChannelError` with a
short reason that is safe to log: a webhook is named by its origin only (its path or query may
hold a token), never with credentials. The runner bounds every attempt by the timeout; the
blocking clients (``smtplib``, paho) run in a thread with that timeout of their own, so a
relay or broker that hangs costs a thread for a while, never the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import socket
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit, urlunsplit

import orjson

from ilagent import USER_AGENT
from ilagent.config import MqttSettings
from ilagent.fallback.alarm import Notice
from ilagent.outbound import open_session
from ilagent.proxies import DIRECT

if TYPE_CHECKING:
    import aiohttp

logger = logging.getLogger(__name__)

EXCERPT = 120  # characters of a relay's or a broker's answer in a log line


class ChannelError(Exception):
    """A channel could not send a notice; the text says why and is safe to log."""


class Channel(Protocol):
    """What the runner needs of a channel."""

    name: str  # mqtt, webhook or mail: the metrics' channel label
    where: str  # where it sends to, for log lines (no secrets)

    async def send(self, notice: Notice) -> None:
        """Send one notice; raises :class:`ChannelError` when it did not go through."""

    async def close(self) -> None:
        """Release what it holds (a connection pool)."""


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL: no credentials, path or query (they may hold tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


def without_credentials(url: str) -> str:
    """``url`` without a ``user:password@`` part."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


class Webhook:
    """An HTTP POST of the notice's JSON body; any 2xx is success, redirects are not followed.

    It goes out as ilert's client does (:mod:`ilagent.outbound`): through the proxy of
    ``HTTPS_PROXY`` / ``HTTP_PROXY`` unless ``NO_PROXY`` covers its host, trusting the CAs of
    ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``, both read when its session opens (at the first send).
    """

    name = "webhook"

    def __init__(self, url: str, *, timeout: float) -> None:
        # imported here, at start (a broken install fails then, not when the alarm is due);
        # a daemon without a webhook or an HTTP server goes without aiohttp
        import aiohttp

        self._url = url
        self.where = origin(url)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._failures = (TimeoutError, aiohttp.ClientError, OSError)
        self._session: aiohttp.ClientSession | None = None
        self._route = DIRECT  # how its requests go, read when the session opens

    async def send(self, notice: Notice) -> None:
        if self._session is None:  # on the running loop, when it is first needed
            self._session, proxies = await open_session(
                peer="the local fallback's webhook", timeout=self._timeout,
                headers={"User-Agent": USER_AGENT, "Content-Type": "application/json"})
            self._route = proxies.route(self._url)
        route = self._route
        try:
            async with self._session.post(
                    self._url, data=orjson.dumps(notice.body()), allow_redirects=False,
                    headers=route.headers or None, proxy=route.proxy,
                    proxy_headers=route.proxy_headers) as response:
                status = response.status
        except self._failures as exc:
            raise ChannelError(self._safe(f"{type(exc).__name__}: {exc}".rstrip(": "))) from None
        if not 200 <= status < 300:
            raise ChannelError(f"HTTP {status}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _safe(self, text: str) -> str:
        """An error text without the URL's path and query (a URL error may quote them)."""
        parts = urlsplit(self._url)
        for secret in (self._url, urlunsplit(("", "", parts.path, parts.query, ""))):
            if len(secret) > 1:
                text = text.replace(secret, "…")
        return text[:EXCERPT * 2]


class Mail:
    """A plain-text mail through an SMTP relay (no authentication: a local relay), by smtplib."""

    name = "mail"

    def __init__(self, *, host: str, port: int, sender: str, recipients: tuple[str, ...],
                 timeout: float) -> None:
        self._host, self._port = host, port
        self.where = f"{host}:{port}"
        self._sender = sender
        self._recipients = recipients
        self._timeout = timeout
        # smtplib's default EHLO name and make_msgid's domain are socket.getfqdn(), a DNS
        # lookup that can hang for long on a plant whose network is in trouble
        self._helo = socket.gethostname() or "localhost"

    async def send(self, notice: Notice) -> None:
        await asyncio.to_thread(self._deliver, self.message(notice))

    async def close(self) -> None:
        return None

    def message(self, notice: Notice) -> EmailMessage:
        """The mail for ``notice``: its subject line, the text, and the JSON body's fields."""
        message = EmailMessage()
        message["Subject"] = notice.subject()
        message["From"] = self._sender
        message["To"] = ", ".join(self._recipients)
        message["Date"] = formatdate(notice.at, usegmt=True)
        message["Message-ID"] = make_msgid("ilagent", domain=self._helo)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to it
        message.set_content(notice.text())
        return message

    def _deliver(self, message: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self._host, self._port, local_hostname=self._helo,
                              timeout=self._timeout) as smtp:
                refused = smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused:
            raise ChannelError("the relay refused every recipient") from None
        except smtplib.SMTPResponseException as exc:
            answer = exc.smtp_error.decode("utf-8", "replace") if isinstance(
                exc.smtp_error, bytes) else str(exc.smtp_error)
            raise ChannelError(f"the relay answered {exc.smtp_code} {answer[:EXCERPT]}") from None
        except (smtplib.SMTPException, OSError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise ChannelError(f"{type(exc).__name__}: {reason}"[:EXCERPT * 2]) from None
        if refused:
            logger.warning("local fallback: the mail relay %s refused %d of %d recipients: %s",
                           self.where, len(refused), len(self._recipients), ", ".join(refused))


class Mqtt:
    """The notice's JSON body published at QoS 1, retained (a light or a horn that connects
    later sees the current state), on a short connection of its own."""

    name = "mqtt"

    def __init__(self, settings: MqttSettings, topic: str, *, timeout: float) -> None:
        from ilagent.mqtt import publisher  # paho only when this channel is configured

        self._publisher = publisher
        self._settings = settings
        self._topic = topic
        self.where = f"{settings.host}:{settings.port} {topic}"
        self._timeout = timeout

    async def send(self, notice: Notice) -> None:
        try:
            await asyncio.to_thread(self._publisher.publish_once, self._settings, self._topic,
                                    orjson.dumps(notice.body()), timeout=self._timeout,
                                    retain=True)
        except self._publisher.PublishError as exc:
            raise ChannelError(str(exc)[:EXCERPT * 2]) from None

    async def close(self) -> None:
        return None
