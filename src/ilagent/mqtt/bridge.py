"""MQTT to ilert: maps each received message and acknowledges it once it ended.

Without ``--mqtt_buffer`` a QoS 1 message is delivered through the
:class:`~ilagent.delivery.engine.Deliverer` (on its alert's lane, paced, retried) and acknowledged to
the broker only after ilert accepted it, it was filtered, or it was dead-lettered; the
:class:`~ilagent.mqtt.acks.AckWindow` keeps the acknowledgements in arrival order. A crash
before that makes the broker send it again.

With ``--mqtt_buffer`` an event is committed to the daemon's SQLite queue first and then
acknowledged; the queue worker delivers it like an event of the HTTP intake (same order per
alert, pacing, retries, ``--max_retries`` and dead letters); policy updates are queued as
their own kind. With ``--spool kafka:TOPIC`` the same records go to the Kafka spool instead
(through the daemon's :class:`~ilagent.mqtt.writes.RecordSink`), each acknowledged once the
brokers have it, and the Kafka bridge delivers them; dead letters are then logged at ERROR,
as without the buffer. A queue file that cannot be written holds the acknowledgement back (see
:mod:`ilagent.mqtt.writes`, also for the bounded shutdown), and so does a full spool
(``--spool_max_bytes``): the message waits unacknowledged, the broker keeps it, until
deliveries make room (:mod:`ilagent.spool.space`; woken, not polled). Heartbeat messages are never
buffered: a ping is only worth something now.

Dead letters go to the queue's ``dead_letters`` table with ``--mqtt_buffer`` (see
``ilagent queue list``), else to the log at ERROR, one line each. Events are posted to
``/v1/events/mqtt/<key>`` with ``customDetails`` ``{"topic": …}`` unless the payload has its
own, as ilagent 0.9 does. A fire drill's message (an ``ilagent.drill`` user property) is handed
to the drills and acknowledged at once, never delivered as a real alarm (:mod:`ilagent.drills`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ilagent.config import MappingRules, MqttSettings, PolicyRules
from ilagent.delivery.drift import RouteWatch
from ilagent.delivery.engine import Deliverer, Job, Verdict
from ilagent.delivery.job import Parts, Position
from ilagent.delivery.lanes import POLICY_KEY, POLICY_PATH, alert_lane, heartbeat_lane, policy_lane
from ilagent.delivery.stuck import Head
from ilagent.drills.marks import DrillInbox, hand_over
from ilagent.ilert import Result
from ilagent.logs import EACH, Sampled, mask
from ilagent.mapping.messages import FLAG_ROUTE, Dropped
from ilagent.mapping.policy import PolicyUpdate
from ilagent.mapping.reading import Event, Fanout, Ping, Reading, Refused, read
from ilagent.mapping.routes import Route
from ilagent.mapping.topics import Classifier, Kind, mqtt_filters
from ilagent.metrics import Metrics
from ilagent.mqtt.acks import AckWindow, Unacked
from ilagent.mqtt.connection import MqttConnection, Received
from ilagent.mqtt.writes import QueueWrites, RecordSink
from ilagent.records import RecordKind, mqtt_path
from ilagent.spool.legacy import Converted
from ilagent.spool.space import row_bytes

if TYPE_CHECKING:
    from ilagent.spool.store import QueueStore

logger = logging.getLogger(__name__)

SOURCE = "mqtt"
EXCERPT = 300


class MqttBridge:
    """Subscribes to the event, heartbeat and policy topics and delivers them (or queues
    them)."""

    def __init__(self, *, settings: MqttSettings, rules: MappingRules, deliverer: Deliverer,
                 metrics: Metrics, policy_rules: PolicyRules | None = None,
                 store: QueueStore | None = None, sink: RecordSink | None = None,
                 notify: Callable[[], None] | None = None, max_event_age: float = 0.0,
                 routes: tuple[Route, ...] = ()) -> None:
        self.settings = settings
        self.routes = routes  # [[route]]s; none: the mapping flags (replaced on a reload)
        self.drills: DrillInbox | None = None  # fire drills hand their messages here
        self._max_event_age = max_event_age  # direct mode; buffered rows age in the spool
        self._rules = rules
        self._policy_rules = policy_rules or PolicyRules()
        self._deliverer = deliverer
        self._metrics = metrics
        self._store = store if settings.buffer else None
        self._sink = sink if settings.buffer else None  # the Kafka spool, instead of the file
        self._buffered = self._store is not None or self._sink is not None
        self._notify = notify
        self._window = AckWindow(remember=settings.receive_maximum)
        self._classify = Classifier([(Kind.HEARTBEAT, mqtt_filters(settings.heartbeat_topics)),
                                     (Kind.POLICY, mqtt_filters(settings.policy_topics)),
                                     (Kind.EVENT, mqtt_filters(settings.event_topics))])
        self.connection = MqttConnection(settings=settings, metrics=metrics,
                                         on_message=self._received,
                                         on_connected=self._connected,
                                         on_disconnected=self._disconnected)
        self._writes = QueueWrites()
        self._stopping = False
        self._consumed = metrics.consumed.labels(SOURCE)
        self._filtered = metrics.filtered.labels(SOURCE, FLAG_ROUTE)
        self._watch = RouteWatch(metrics, SOURCE)
        self._log_filtered = Sampled(logger, "filtered MQTT %s: %s")

    # ---- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Connect and subscribe (in the background)."""
        self.connection.start()

    def stop_fetching(self) -> None:
        """Shutdown step one: messages arriving from now on are left to the broker."""
        self._stopping = True

    async def close(self, *, timeout: float) -> None:
        """Let queue writes finish for up to ``timeout`` s (the messages of the others stay
        unacknowledged), then disconnect (the session stays with the broker)."""
        await self._writes.drain(timeout)
        await self.connection.close()

    @property
    def unacknowledged(self) -> int:
        """QoS 1 messages received and not yet acknowledged."""
        return len(self._window)

    # ---- receiving ---------------------------------------------------------------------------

    def heads(self) -> list[Head]:
        """The oldest unacknowledged message of the connection (for the stuck watch)."""
        oldest = self.oldest_unfinished()
        if oldest is None:
            return [Head(SOURCE)]
        since, job = oldest
        return [Head(SOURCE, where=job.origin if job is not None else "(being queued)",
                     since=since, job=job)]

    def oldest_unfinished(self) -> tuple[float, Job | None] | None:
        """The oldest QoS 1 message not yet acknowledged that waits for this daemon: its
        monotonic receive time, and the delivery job carrying it while the delivery engine
        has it (None while it is being queued, or between a reconnect and its resend);
        None when nothing waits."""
        oldest = self._window.oldest()
        return None if oldest is None else (oldest.received, oldest.job)

    def _connected(self, session_present: bool) -> None:
        self._window.connected(session_present=session_present)
        self._metrics.mqtt_unacked.set(len(self._window))

    def _disconnected(self) -> None:
        self._window.disconnected()

    def _received(self, message: Received) -> None:
        if self._stopping:
            return  # not acknowledged: the broker sends it again after the restart
        unacked: Unacked | None = None
        if message.qos:
            unacked, new = self._window.arrived(
                message.mid, hash((message.topic, message.payload)), dup=message.dup,
                received=time.monotonic())
            if not new:  # the broker's resend of one in hand, finished, or acknowledged
                logger.debug("MQTT resend of %s#%d joins the original", message.topic,
                             message.mid)
                self._release()
                return
            self._metrics.mqtt_unacked.set(len(self._window))
        self._consumed.inc()
        try:
            self._dispatch(message, unacked)
        except Exception:
            logger.exception("internal error while handling MQTT %s; dead-lettering it",
                             message.topic, extra=EACH)
            self._dead_letter(message, unacked, "internal_error", "see the daemon's log")

    def _read(self, topic: str, payload: bytes) -> Reading:
        """What a message asks for, by its topic's kind and today's options (no side effects)."""
        return read(self._classify(topic), payload, topic=topic, rules=self._rules,
                    policy_rules=self._policy_rules, source=SOURCE, routes=self.routes)

    def _dispatch(self, message: Received, unacked: Unacked | None) -> None:
        reading = self._read(message.topic, message.payload)
        if message.drill is not None:  # a fire drill's message: never a real alarm
            hand_over(self.drills, self._metrics, SOURCE, message.drill, reading)
            self._settle(unacked)
            return
        if isinstance(reading, Fanout):
            self._watch.fanout(reading)
            if reading.filtered:
                self._log_filtered(message.topic, reading.detail)
                self._settle(unacked)
                return
            parts = Parts(len(reading.parts)) if len(reading.parts) > 1 else None
            for part in reading.parts:
                if isinstance(part, Event):
                    self._event(message, part, unacked, parts)
                else:
                    self._dead_letter(message, unacked, part.reason, part.detail, parts,
                                      part.route)
        elif isinstance(reading, Dropped):
            self._filtered.inc()
            self._log_filtered(message.topic, reading.detail)
            self._settle(unacked)
        elif isinstance(reading, Refused):
            self._dead_letter(message, unacked, reading.reason, reading.detail)
        elif isinstance(reading, Ping):
            self._submit(Job(
                owner=self, source=SOURCE, lane=heartbeat_lane(reading.key),
                integration_key=reading.key, origin=message.topic, context=(unacked, None)))
        elif isinstance(reading, Event):
            self._watch.mapped(reading.mapped)
            self._event(message, reading, unacked, None)
        elif self._buffered:
            self._queue(POLICY_KEY, POLICY_PATH, reading.to_json(), unacked, RecordKind.POLICY)
        else:
            self._submit(Job(
                owner=self, source=SOURCE, lane=policy_lane(reading), integration_key=POLICY_KEY,
                policy=reading, origin=message.topic, context=(unacked, None)))

    def _event(self, message: Received, event: Event, unacked: Unacked | None,
               parts: Parts | None) -> None:
        """Deliver (or queue) one event of a message: the message's, or one route's."""
        mapped = event.mapped
        for warning in mapped.warnings:
            logger.warning("MQTT %s: %s", message.topic, warning)
        if self._buffered:
            self._queue(mapped.integration_key, mapped.path, event.body.decode(), unacked,
                        RecordKind.EVENT, parts)
            return
        pages = self._max_event_age and mapped.event.get("eventType") == "ALERT"
        self._submit(Job(
            owner=self, source=SOURCE, lane=alert_lane(mapped.integration_key, mapped.alert_key),
            integration_key=mapped.integration_key, path=mapped.path, body=event.body,
            origin=message.topic, context=(unacked, parts), route=mapped.route,
            expires_at=time.time() + self._max_event_age if pages else None,
            position=Position(message.topic, None, message.mid)))

    def _submit(self, job: Job) -> None:
        unacked: Unacked | None = job.context[0]
        if unacked is not None and unacked.job is None:
            unacked.job = job  # for the head-of-line watch
        self._deliverer.submit(job)

    def convert_legacy(self, topic: str, payload: bytes) -> Converted:
        """What becomes of an MQTT message ilagent 0.9 left in its ``mqtt_queue``: read as a
        message received now; a heartbeat ping that old is dropped, as 0.9 drops it."""
        kind = self._classify(topic)
        if kind is Kind.HEARTBEAT:
            return Converted()
        # one row holds one event: read by the mapping flags, as 0.9 wrote it, never fanned out
        reading = read(kind, payload, topic=topic, rules=self._rules,
                       policy_rules=self._policy_rules, source=SOURCE)
        if isinstance(reading, Event):
            return Converted(integration_key=reading.mapped.integration_key,
                             path=reading.mapped.path, event=reading.body.decode())
        if isinstance(reading, PolicyUpdate):
            return Converted(integration_key=POLICY_KEY, path=POLICY_PATH,
                             event=reading.to_json())
        if isinstance(reading, Refused):
            return Converted(reason=reading.reason, detail=reading.detail)
        return Converted()

    # ---- buffer mode -------------------------------------------------------------------------

    def _queue(self, key: str, path: str, text: str, unacked: Unacked | None,
               kind: RecordKind, parts: Parts | None = None) -> None:
        """Commit an event (or policy update) to the spool, then acknowledge it."""
        store, sink = self._store, self._sink

        async def write() -> None:
            if sink is not None:
                where = await sink.put(kind, integration_key=key, path=path, event=text)
                logger.debug("spooled MQTT message as %s", where)
                return
            assert store is not None
            await self._room(store, row_bytes(key, path, text))
            row_id = await store.enqueue(integration_key=key, path=path, event=text, kind=kind,
                                         reserved=True)
            logger.debug("queued MQTT message as queue#%d", row_id)
            if self._notify is not None:
                self._notify()

        self._writes.start(write, then=lambda: self._ended(unacked, parts, finished=True))

    @staticmethod
    async def _room(store: QueueStore, nbytes: int) -> None:
        """Wait, in turn, until the spool has room for ``nbytes`` (and hold it)."""
        space = store.space
        if not space.take(nbytes):
            logger.warning("the spool is full (%d of %d bytes, --spool_max_bytes): MQTT "
                           "messages wait unacknowledged until deliveries make room",
                           space.used, space.limit or 0)
            await space.wait(nbytes)

    # ---- ending a message --------------------------------------------------------------------

    def _dead_letter(self, message: Received, unacked: Unacked | None, reason: str,
                     detail: str, parts: Parts | None = None, route: str = "") -> None:
        self._metrics.dead_lettered.labels(SOURCE, reason, route).inc()
        text = message.payload.decode("utf-8", "replace")
        where = message.topic + (f" (route {route})" if route else "")
        if self._store is None:
            logger.error("dead letter MQTT %s: %s: %s; the message: %s", where, reason,
                         mask(detail), mask(text[:EXCERPT]), extra=EACH)
            self._ended(unacked, parts, finished=True)
            return
        logger.warning("dead letter MQTT %s: %s: %s (kept in the queue file)", where,
                       reason, mask(detail), extra=EACH)
        store, path = self._store, mqtt_path(message.topic)

        async def write() -> None:
            await self._room(store, row_bytes("", path, text))
            await store.add_dead_letter(integration_key="", path=path, event=text,
                                        reason=reason, detail=detail, kind=RecordKind.MQTT,
                                        reserved=True)

        self._writes.start(write, then=lambda: self._ended(unacked, parts, finished=True))

    def _ended(self, unacked: Unacked | None, parts: Parts | None, *, finished: bool) -> None:
        """One event of a message ended: the message is acknowledged after the last of them,
        unless one was withdrawn (then the broker sends it again)."""
        if parts is not None and not parts.end(finished=finished):
            return
        if finished and not (parts is not None and parts.withdrawn):
            self._settle(unacked)
        elif unacked is not None:
            unacked.job = None

    def _settle(self, unacked: Unacked | None) -> None:
        if unacked is not None:
            self._window.finish(unacked)
            self._release()

    def _release(self) -> None:
        """Acknowledge what the window allows; a PUBACK the client refuses (the connection
        is gone) stays in the window until the broker sends the message again."""
        self._window.release(self.connection.ack)
        self._metrics.mqtt_unacked.set(len(self._window))

    # ---- JobOwner ----------------------------------------------------------------------------

    def cancelled(self, job: Job) -> bool:
        return False

    def abandoned(self, job: Job) -> None:
        """Left unacknowledged: the broker sends it again."""
        unacked, parts = job.context
        self._ended(unacked, parts, finished=False)

    def attempted(self, job: Job, result: Result, delay: float) -> None:
        """Nothing to persist: the missing acknowledgement is what brings a message back."""

    async def finished(self, job: Job, verdict: Verdict, result: Result | None,
                       reason: str) -> None:
        if verdict is Verdict.DEAD_LETTER:  # counted and logged (ERROR) by the engine
            status = result.status_label if result else ""
            logger.debug("dead letter MQTT %s: %s %s %s", job.origin, reason, status,
                         mask(result.detail if result else ""))
        unacked, parts = job.context
        self._ended(unacked, parts, finished=True)
