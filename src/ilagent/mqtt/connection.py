"""The MQTT connection: connect, subscribe, hand messages to the event loop, acknowledge, reconnect.

paho-mqtt runs each connection's network loop in its own thread; callbacks only hand over to
the event loop (``call_soon_threadsafe``), where everything else happens. Acknowledgements go
back through the client (paho queues them for its thread). Each connection attempt builds a
fresh client, so certificate files are read again and a changed set takes effect.

The session is persistent: client id stable, clean start off, session expiry "never" (MQTT 5;
for 3.1.1 clean session off), so messages that were not acknowledged are sent again after a
reconnect or a restart. Reconnects back off exponentially with jitter up to
``reconnect_max_delay``; the backoff starts over once a connection was subscribed.

Before the first successful connection, a refused login, a broker certificate that does not
verify, or TLS against a plain listener stops the daemon with one line (exit 2); later the same
is retried, as a network failure would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ilagent.config import MqttSettings
from ilagent.drills.marks import MARK, header_mark
from ilagent.metrics import Metrics
from ilagent.mqtt import tls
from ilagent.mqtt.topics import subscription

logger = logging.getLogger(__name__)

SESSION_NEVER_EXPIRES = 0xFFFFFFFF
CONNECT_TIMEOUT = 10.0
FIRST_DELAY = 0.1
SUBSCRIBE_QOS = 1  # QoS 2 is received as QoS 1: see MqttConnection
EARLY_CLOSES_AT_START = 3  # connections closed before any answer that make a start fail
# CONNACK reasons that say the configuration is wrong, not the network
REFUSED = {0x84: "the broker does not speak this MQTT version (try --mqtt_version 3.1.1)",
           0x85: "the broker refused the client id (--mqtt_name)",
           0x86: "bad user name or password (--mqtt_username/--mqtt_password)",
           0x87: "not authorised: check --mqtt_username and --mqtt_password (or the client "
                 "certificate)",
           0x8C: "the broker refused the authentication method"}


@dataclass(frozen=True)
class Received:
    """One message, as handed to the event loop."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    retain: bool
    dup: bool = False  # the broker's resend after a reconnect (MQTT's DUP flag)
    drill: str | None = None  # a fire drill's id (MQTT 5 user property, ilagent.drills)


class MqttConnection:
    """Keeps one MQTT connection up, subscribed and acknowledging, until closed.

    ``--mqtt_qos 2`` subscriptions are made at QoS 1: a QoS 2 receiver owns the message once it
    answered PUBREC, before ilert has it, so a crash could lose it; at QoS 1 the broker keeps it
    until the PUBACK ilagent sends after delivery. Resends after a reconnect are recognised by
    :mod:`ilagent.mqtt.acks`, told of each CONNACK and of the end of each connection that had one.
    """

    def __init__(self, *, settings: MqttSettings, metrics: Metrics,
                 on_message: Callable[[Received], None],
                 on_connected: Callable[[bool], None],
                 on_disconnected: Callable[[], None]) -> None:
        self.settings = settings
        self._metrics = metrics
        self._on_message = on_message
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Client | None = None
        self._lost = asyncio.Event()
        self._closed = asyncio.Event()
        self._answered = asyncio.Event()
        self._connack = False
        self._closed_early = 0  # connections closed before a CONNACK, before the first success
        self._closing = False
        self._attempt = 0
        self._active_fingerprint = ""
        self._reload = False
        self.connected = False
        self.subscribed = False
        self.ever_connected = False
        self.fatal = ""
        self.last_error = ""
        self._refused_topics: list[str] = []
        self._task: asyncio.Task[None] | None = None

    # ---- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Begin connecting (in the background)."""
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run())

    async def close(self) -> None:
        """Disconnect, keeping the session (unacknowledged messages are sent again later)."""
        self._closing = True
        self._closed.set()
        self._lost.set()
        await self.ended()

    async def ended(self) -> None:
        """Wait until the connection task ended (closed, a fatal error, or a bug); cancelling
        the waiter leaves the task running."""
        if self._task is not None:
            await asyncio.wait([self._task])

    def readiness(self) -> dict[str, Any] | None:
        """None while connected with every subscription granted, else why not (``/ready``)."""
        if self.connected and self.subscribed:
            return None
        return {"connected": self.connected, "subscribed": self.subscribed,
                "refused_topics": self._refused_topics, "error": self.last_error}

    def ack(self, mid: int) -> bool:
        """Acknowledge a QoS 1 message of the current connection; False when the client did
        not take the PUBACK (no connection): the message then waits for the broker's resend."""
        client = self._client
        if client is None or not self.connected:
            return False
        if client.ack(mid, 1) != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False
        self._metrics.mqtt_acks.inc()
        return True

    def publish_drill(self, topic: str, payload: bytes, drill: str) -> str:
        """Publish a fire drill's message at QoS 1 on this connection, marked by an MQTT 5
        user property; "" when the client took it, else why not."""
        client = self._client
        if client is None or not self.connected:
            return f"not connected to {self.settings.host}:{self.settings.port}"
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.UserProperty = (MARK, drill)
        info = client.publish(topic, payload, qos=1, properties=properties)
        return "" if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS else f"publish failed ({info.rc})"

    # ---- the connection loop -----------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._keep_connected()
        except Exception:  # a bug: the daemon stops (exit 1) instead of running deaf
            logger.exception("the MQTT connection failed unexpectedly")
            raise

    async def _keep_connected(self) -> None:
        while not self._closing:
            client = await self._connect()
            if client is not None:
                await self._serve(client)
            if self._closing or self.fatal:
                return
            if self._reload:
                self._reload = False
                continue
            await self._back_off()

    async def _connect(self) -> Client | None:
        """Build a client and connect it; None (and the reason recorded) when that failed."""
        settings = self.settings
        fingerprint = ""
        context = None
        try:
            if settings.tls:
                fingerprint = await asyncio.to_thread(tls.fingerprint, settings)
                context = await asyncio.to_thread(tls.context, settings)
        except tls.TlsFilesError as exc:
            self._failed(f"TLS files: {exc}", fatal=True)
            return None
        client = self._client_for(context)
        self._lost = asyncio.Event()
        self._answered = asyncio.Event()  # CONNACK, or the connection ended
        self._connack = False
        try:
            await asyncio.to_thread(client.connect, settings.host, settings.port,
                                    settings.keepalive, **self._session_arguments())
        except ssl.SSLCertVerificationError as exc:
            self._failed(f"the broker's certificate does not verify: {exc.verify_message}",
                         fatal=True)
            return None
        except ssl.SSLError as exc:
            self._failed(f"TLS handshake failed ({exc.reason or exc}); is {settings.port} a "
                         "TLS listener, and is the client certificate accepted?", fatal=True)
            return None
        except ConnectionResetError:
            if settings.tls:
                self._failed(f"the broker closed the connection during the TLS handshake: is "
                             f"{settings.port} a TLS listener?", fatal=True)
            else:
                self._failed("the broker reset the connection", fatal=False)
            return None
        except (OSError, ValueError) as exc:  # ValueError: paho on an unusable host name
            self._failed(f"cannot connect: {getattr(exc, 'strerror', None) or exc}",
                         fatal=False)
            return None
        self._active_fingerprint = fingerprint
        client.loop_start()
        return client

    def _client_for(self, context: ssl.SSLContext | None) -> Client:
        settings = self.settings
        v5 = settings.version == "5"
        client = Client(CallbackAPIVersion.VERSION2, client_id=settings.client_id,
                        clean_session=None if v5 else False,
                        protocol=MQTTProtocolVersion.MQTTv5 if v5
                        else MQTTProtocolVersion.MQTTv311,
                        reconnect_on_failure=False, manual_ack=True)
        client.connect_timeout = CONNECT_TIMEOUT
        if logger.isEnabledFor(logging.DEBUG):  # -vvv; otherwise our own lines say it
            client.enable_logger(logging.getLogger("ilagent.paho"))
        if settings.username:
            client.username_pw_set(settings.username, settings.password)
        if context is not None:
            client.tls_set_context(context)
        client.on_connect = self._paho_connected
        client.on_disconnect = self._paho_disconnected
        client.on_subscribe = self._paho_subscribed
        client.on_message = self._paho_message
        return client

    def _session_arguments(self) -> dict[str, Any]:
        if self.settings.version != "5":
            return {}
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = SESSION_NEVER_EXPIRES
        properties.ReceiveMaximum = min(self.settings.receive_maximum, 65535)  # MQTT's largest
        return {"clean_start": False, "properties": properties}

    async def _serve(self, client: Client) -> None:
        """Wait until the connection is lost, closed, or its certificate files changed."""
        self._client = client
        interval = self.settings.cert_reload if self.settings.tls else None
        try:
            with contextlib.suppress(TimeoutError):  # no CONNACK in time: try again
                await asyncio.wait_for(self._answered.wait(), CONNECT_TIMEOUT)
            if not self.connected and not self._lost.is_set():
                self._failed("the broker did not answer the connect request", fatal=False)
                return
            if self._closing:
                return
            if not self._connack:  # closed before answering: a TLS listener, or a refusal
                self._closed_early += 1
                hint = ("is it a TLS listener (add --mqtt_tls), or no MQTT broker at all "
                        "(check -m and -q)?" if not self.settings.tls
                        else "does it accept this client certificate?")
                self._failed(f"the broker closed the connection before answering; {hint}",
                             fatal=self._closed_early >= EARLY_CLOSES_AT_START)
                return
            while not self._lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._lost.wait(), interval)
                if (interval is not None and not self._lost.is_set()
                        and await tls.changed(self.settings, self._active_fingerprint)):
                    self._reload = True
                    break
        finally:
            self._down()
            await asyncio.to_thread(self._stop, client)
            self._client = None

    @staticmethod
    def _stop(client: Client) -> None:
        client.disconnect()
        client.loop_stop()

    async def _back_off(self) -> None:
        self._attempt += 1
        cap = min(self.settings.reconnect_max_delay, FIRST_DELAY * 2 ** min(self._attempt, 20))
        delay = cap / 2 + random.random() * cap / 2
        self._metrics.mqtt_reconnects.inc()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), delay)

    def _failed(self, error: str, *, fatal: bool) -> None:
        self.last_error = error
        if fatal and not self.ever_connected:
            self.fatal = f"MQTT {self.settings.host}:{self.settings.port}: {error}"
            return
        logger.warning("MQTT %s:%d: %s (reconnecting)", self.settings.host, self.settings.port,
                       error)

    # ---- paho callbacks (its network thread): hand over to the event loop ---------------------

    def _handover(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(fn, *args)

    def _paho_connected(self, client: Client, _userdata: Any, flags: ConnectFlags,
                        reason: ReasonCode, _properties: Properties | None) -> None:
        self._handover(self._connected, client, flags.session_present, reason)

    def _paho_disconnected(self, client: Client, _userdata: Any, _flags: DisconnectFlags,
                           reason: ReasonCode, _properties: Properties | None) -> None:
        self._handover(self._disconnected, client, reason)

    def _paho_subscribed(self, client: Client, _userdata: Any, _mid: int,
                         reasons: list[ReasonCode], _properties: Properties | None) -> None:
        self._handover(self._subscribed, client, [r.value for r in reasons])

    def _paho_message(self, client: Client, _userdata: Any, message: MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:  # MQTT forbids it; a broken broker or client sent it
            topic = message._topic.decode("utf-8", "replace")
        marks = getattr(message.properties, "UserProperty", None)  # MQTT 5 only
        self._handover(self._received, client, Received(
            topic=topic, payload=bytes(message.payload), qos=message.qos, mid=message.mid,
            retain=bool(message.retain), dup=bool(message.dup), drill=header_mark(marks)))

    # ---- on the event loop -------------------------------------------------------------------

    def _connected(self, client: Client, session_present: bool, reason: ReasonCode) -> None:
        if client is not self._client:
            return
        self._answered.set()
        self._connack = True
        if reason.is_failure:
            refused = REFUSED.get(reason.value, f"connection refused: {reason}")
            self._failed(refused, fatal=reason.value in REFUSED)
            self._lost.set()
            return
        self.connected = True
        self.ever_connected = True
        self.last_error = ""
        self._metrics.mqtt_connected.set(1)
        logger.info("MQTT connected to %s:%d as %s (session %s)", self.settings.host,
                    self.settings.port, self.settings.client_id,
                    "resumed" if session_present else "new")
        self._on_connected(session_present)
        settings = self.settings
        options = SubscribeOptions(qos=SUBSCRIBE_QOS if settings.qos else 0,
                                   retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
        wanted = [(subscription(t, settings.shared_group),
                   options if settings.version == "5" else options.QoS)
                  for t in settings.topics]
        result, _mid = client.subscribe(wanted)  # type: ignore[arg-type]
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._failed(f"subscribing failed ({result.name})", fatal=False)

    def _subscribed(self, client: Client, codes: list[int]) -> None:
        if client is not self._client:
            return
        topics = self.settings.topics
        self._refused_topics = [t for t, code in zip(topics, codes, strict=False) if code >= 0x80]
        if self._refused_topics:
            self.last_error = ("the broker refused the subscription to "
                               + ", ".join(self._refused_topics))
            logger.error("MQTT: %s (not authorised?); not ready", self.last_error)
            return
        self.subscribed = True
        self._attempt = 0
        logger.info("MQTT subscribed to %s", ", ".join(
            subscription(t, self.settings.shared_group) for t in topics))

    def _disconnected(self, client: Client, reason: ReasonCode) -> None:
        if client is not self._client:
            return
        if not self._closing and not self._reload:
            self.last_error = self.last_error or f"connection lost: {reason}"
            if self.ever_connected and self.connected:
                logger.warning("MQTT connection lost (%s); reconnecting", reason)
        self._down()
        self._answered.set()
        self._lost.set()

    def _down(self) -> None:
        """The connection ended (lost, closed or reloaded): tell the owner once per CONNACK."""
        was_connected, self.connected, self.subscribed = self.connected, False, False
        self._metrics.mqtt_connected.set(0)
        if was_connected:
            self._on_disconnected()

    def _received(self, client: Client, message: Received) -> None:
        # one handed over just before its connection ended could never be acknowledged on
        # it: left to the broker, which sends it again
        if client is self._client and self.connected:
            self._on_message(message)
