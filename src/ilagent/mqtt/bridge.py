"""MQTT to ilert: maps each received message and acknowledges it once it ended.

Without ``--mqtt_buffer`` a QoS 1 message is delivered through the
:class:`~ilagent.delivery.Deliverer` (on its alert's lane, paced, retried) and acknowledged to
the broker only after ilert accepted it, it was filtered, or it was dead-lettered; the
:class:`~ilagent.mqtt.acks.AckWindow` keeps the acknowledgements in arrival order. A crash
before that makes the broker send it again.

With ``--mqtt_buffer`` an event is committed to the daemon's SQLite queue first and then
acknowledged; the queue worker delivers it like an event of the HTTP intake (same order per
alert, pacing, retries, ``--max_retries`` and dead letters); policy updates are queued as
their own kind. Heartbeat messages are never buffered: a ping is only worth something now.

Dead letters go to the queue's ``dead_letters`` table with ``--mqtt_buffer`` (see
``ilagent queue list --dead``), else to the log at ERROR, one line each. Events are posted to
``/v1/events/mqtt/<key>`` with ``customDetails`` ``{"topic": …}`` unless the payload has its
own, as ilagent 0.9 does.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ilagent.config import MappingRules, MqttSettings, PolicyRules
from ilagent.delivery import Deliverer, Job, Verdict
from ilagent.errors import EventError
from ilagent.events import encode_event
from ilagent.ilert import Result
from ilagent.logs import EACH, mask, mask_key
from ilagent.mapping import Dropped, Mapped, heartbeat_key, map_message
from ilagent.metrics import Metrics
from ilagent.mqtt.acks import AckWindow, Unacked
from ilagent.mqtt.connection import MqttConnection, Received
from ilagent.mqtt.topics import TopicClassifier
from ilagent.policy import PolicyUpdate, map_policy
from ilagent.routing import POLICY_KEY, POLICY_PATH, alert_lane, heartbeat_lane, policy_lane
from ilagent.spool.legacy import Converted

if TYPE_CHECKING:
    from ilagent.spool.store import QueueStore

logger = logging.getLogger(__name__)

SOURCE = "mqtt"
EXCERPT = 300
STORE_RETRY_DELAY = 1.0


class MqttBridge:
    """Subscribes to the event, heartbeat and policy topics and delivers them (or queues
    them)."""

    def __init__(self, *, settings: MqttSettings, rules: MappingRules, deliverer: Deliverer,
                 metrics: Metrics, policy_rules: PolicyRules | None = None,
                 store: QueueStore | None = None,
                 notify: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self._rules = rules
        self._policy_rules = policy_rules or PolicyRules()
        self._deliverer = deliverer
        self._metrics = metrics
        self._store = store if settings.buffer else None
        self._notify = notify
        self._window = AckWindow()
        self._classify = TopicClassifier(event=settings.event_topics,
                                         heartbeat=settings.heartbeat_topics,
                                         policy=settings.policy_topics)
        self.connection = MqttConnection(settings=settings, metrics=metrics,
                                         on_message=self._received,
                                         on_connected=self._connected)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._consumed = metrics.consumed.labels(SOURCE)
        self._filtered = metrics.filtered.labels(SOURCE)

    # ---- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Connect and subscribe (in the background)."""
        self.connection.start()

    def stop_fetching(self) -> None:
        """Shutdown step one: messages arriving from now on are left to the broker."""
        self._stopping = True

    async def close(self) -> None:
        """Let queue writes finish, then disconnect (the session stays with the broker)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.connection.close()

    @property
    def unacknowledged(self) -> int:
        """QoS 1 messages received and not yet acknowledged."""
        return len(self._window)

    # ---- receiving ---------------------------------------------------------------------------

    def _connected(self, session_present: bool) -> None:
        self._window.connected(session_present=session_present)
        self._metrics.mqtt_unacked.set(len(self._window))

    def _received(self, message: Received) -> None:
        if self._stopping:
            return  # not acknowledged: the broker sends it again after the restart
        unacked: Unacked | None = None
        if message.qos:
            unacked, new = self._window.arrived(message.mid, hash((message.topic,
                                                                   message.payload)))
            if not new:  # the broker's resend of one still in hand (or done meanwhile)
                logger.debug("MQTT resend of %s#%d joins the original", message.topic,
                             message.mid)
                self._acknowledge(self._window.ready())
                return
            self._metrics.mqtt_unacked.set(len(self._window))
        self._consumed.inc()
        try:
            self._dispatch(message, unacked)
        except Exception:
            logger.exception("internal error while handling MQTT %s; dead-lettering it",
                             message.topic, extra=EACH)
            self._dead_letter(message, unacked, "internal_error", "see the daemon's log")

    def _dispatch(self, message: Received, unacked: Unacked | None) -> None:
        kind = self._classify(message.topic)
        if kind == "heartbeat":
            key = heartbeat_key(message.payload)
            if key is None:
                self._dead_letter(message, unacked, "invalid_heartbeat",
                                  'expected {"integrationKey": "<key>"}')
                return
            self._deliverer.submit(Job(
                owner=self, source=SOURCE, lane=heartbeat_lane(key), integration_key=key,
                origin=message.topic, context=unacked))
            return
        if kind == "policy":
            self._policy(message, unacked)
            return
        if kind != "event":
            self._dead_letter(message, unacked, "unrouted",
                              f"{message.topic} matches no topic option")
            return
        try:
            outcome = map_message(self._rules, message.payload, topic=message.topic,
                                  source=SOURCE)
            body = encode_event(outcome.event) if isinstance(outcome, Mapped) else b""
        except EventError as exc:
            self._dead_letter(message, unacked, "unserialisable", str(exc))
            return
        if not isinstance(outcome, Mapped):
            self._drop(message, unacked, outcome)
            return
        for warning in outcome.warnings:
            logger.warning("MQTT %s: %s", message.topic, warning)
        if self._store is not None:
            self._spawn(self._queue(outcome.integration_key, outcome.path, body.decode(),
                                    unacked))
            return
        self._deliverer.submit(Job(
            owner=self, source=SOURCE, lane=alert_lane(outcome.integration_key,
                                                       outcome.alert_key),
            integration_key=outcome.integration_key, path=outcome.path, body=body,
            origin=message.topic, context=unacked))

    def _policy(self, message: Received, unacked: Unacked | None) -> None:
        update = map_policy(self._policy_rules, self._rules, message.payload)
        if isinstance(update, Dropped):
            self._drop(message, unacked, update)
            return
        if self._store is not None:
            self._spawn(self._queue(POLICY_KEY, POLICY_PATH, update.to_json(), unacked))
            return
        self._deliverer.submit(Job(
            owner=self, source=SOURCE, lane=policy_lane(update), integration_key=POLICY_KEY,
            policy=update, origin=message.topic, context=unacked))

    def convert_legacy(self, topic: str, payload: bytes) -> Converted:
        """What becomes of an MQTT message ilagent 0.9 left in its ``mqtt_queue``: mapped with
        today's options; a heartbeat ping that old is dropped, as 0.9 drops it."""
        kind = self._classify(topic)
        if kind == "heartbeat":
            return Converted()
        if kind == "policy":
            update = map_policy(self._policy_rules, self._rules, payload)
            if isinstance(update, PolicyUpdate):
                return Converted(integration_key=POLICY_KEY, path=POLICY_PATH,
                                 event=update.to_json())
            return Converted() if update.filtered else Converted(
                reason=update.reason.value, detail=update.detail)
        if kind != "event":
            return Converted(reason="unrouted", detail=f"{topic} matches no topic option")
        try:
            outcome = map_message(self._rules, payload, topic=topic, source=SOURCE)
            if isinstance(outcome, Mapped):
                return Converted(integration_key=outcome.integration_key, path=outcome.path,
                                 event=encode_event(outcome.event).decode())
        except EventError as exc:
            return Converted(reason="unserialisable", detail=str(exc))
        if outcome.filtered:
            return Converted()
        return Converted(reason=outcome.reason.value, detail=outcome.detail)

    # ---- buffer mode -------------------------------------------------------------------------

    async def _queue(self, key: str, path: str, text: str, unacked: Unacked | None) -> None:
        """Commit an event (or policy update) to the queue (retrying while the file fails),
        then acknowledge."""
        assert self._store is not None
        while True:
            try:
                row_id = await self._store.enqueue(integration_key=key, path=path, event=text)
                break
            except sqlite3.Error as exc:
                logger.error("could not queue an MQTT message for %s (%s); retrying",
                             mask_key(key), exc)
                await asyncio.sleep(STORE_RETRY_DELAY)
        logger.debug("queued MQTT message as queue#%d", row_id)
        if self._notify is not None:
            self._notify()
        self._settle(unacked)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- ending a message --------------------------------------------------------------------

    def _drop(self, message: Received, unacked: Unacked | None, dropped: Dropped) -> None:
        """A message that yields no request: filtered (counted, acknowledged) or a dead letter."""
        if dropped.filtered:
            self._filtered.inc()
            self._settle(unacked)
        else:
            self._dead_letter(message, unacked, dropped.reason.value, dropped.detail)

    def _dead_letter(self, message: Received, unacked: Unacked | None, reason: str,
                     detail: str) -> None:
        self._metrics.dead_lettered.labels(SOURCE, reason).inc()
        text = message.payload.decode("utf-8", "replace")
        if self._store is None:
            logger.error("dead letter MQTT %s: %s %s: %s", message.topic, reason, mask(detail),
                         mask(text[:EXCERPT]), extra=EACH)
            self._settle(unacked)
            return
        self._spawn(self._keep(message.topic, text, unacked, reason, detail))

    async def _keep(self, topic: str, text: str, unacked: Unacked | None, reason: str,
                    detail: str) -> None:
        assert self._store is not None
        logger.warning("dead letter MQTT %s: %s %s (kept in the queue file)", topic, reason,
                       mask(detail), extra=EACH)
        while True:
            try:
                await self._store.add_dead_letter(integration_key="", path=f"mqtt:{topic}",
                                                  event=text, reason=reason, detail=detail)
                break
            except sqlite3.Error as exc:
                logger.error("could not keep an MQTT dead letter (%s); retrying", exc)
                await asyncio.sleep(STORE_RETRY_DELAY)
        self._settle(unacked)

    def _settle(self, unacked: Unacked | None) -> None:
        if unacked is not None:
            self._acknowledge(self._window.finish(unacked))

    def _acknowledge(self, ready: list[Unacked]) -> None:
        for unacked in ready:
            self.connection.ack(unacked.mid)
        self._metrics.mqtt_unacked.set(len(self._window))

    # ---- JobOwner ----------------------------------------------------------------------------

    def cancelled(self, job: Job) -> bool:
        return False

    def abandoned(self, job: Job) -> None:
        """Left unacknowledged: the broker sends it again."""

    def attempted(self, job: Job, result: Result, delay: float) -> None:
        """Nothing to persist: the missing acknowledgement is what brings a message back."""

    async def finished(self, job: Job, verdict: Verdict, result: Result | None,
                       reason: str) -> None:
        if verdict is Verdict.DEAD_LETTER:  # counted by the engine
            status = result.status_label if result else ""
            logger.error("dead letter MQTT %s: %s %s %s", job.origin, reason, status,
                         mask(result.detail if result else ""), extra=EACH)
        self._settle(job.context)
