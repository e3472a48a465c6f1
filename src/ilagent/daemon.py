"""Composition root of ``ilagent daemon``: build the parts from the config, run, shut down in order.

Shutdown (SIGTERM/SIGINT, or the Kafka worker dying) runs one fixed, logged sequence:
stop fetching (Kafka and the queue) → let in-flight deliveries finish for up to
``--shutdown_timeout`` → commit the watermarks and leave the group → stop the HTTP server →
close the queue file → exit. A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ilagent.config import (
    DEFAULT_POLICY_UPDATES_PER_MINUTE,
    HEARTBEAT_PINGS_PER_MINUTE,
    DaemonConfig,
)
from ilagent.delivery.engine import Deliverer
from ilagent.delivery.gate import Gate
from ilagent.delivery.pacing import Pacer
from ilagent.delivery.policy_sync import PolicySync
from ilagent.delivery.stuck import CHECK_INTERVAL, Head, StuckWatch
from ilagent.drills.desk import DrillDesk
from ilagent.errors import EXIT_USAGE, ConfigError
from ilagent.fallback.runner import build as build_fallback
from ilagent.ilert import IlertClient
from ilagent.journal.writer import Journal
from ilagent.metrics import Metrics
from ilagent.reload import reload_routes
from ilagent.secret_options import register_secrets, secrets_of
from ilagent.spool.lock import SpoolLock
from ilagent.spool.opening import open_queue
from ilagent.spool.store import QueueStore
from ilagent.spool.worker import SpoolWorker
from ilagent.spool_wiring import intake_sink, kafka_spool, spool_part, spool_reader
from ilagent.summary import log_summary
from ilagent.web.probes import Probes, ping_while_ready

if TYPE_CHECKING:
    from aiohttp import web

    from ilagent.drills.sending import DrillSender
    from ilagent.kafka.bridge import KafkaBridge
    from ilagent.mapping.routes import Route
    from ilagent.mqtt.bridge import MqttBridge
    from ilagent.web.access import Access

logger = logging.getLogger(__name__)


class Daemon:
    """The running daemon; :meth:`run` returns its exit code."""

    def __init__(self, config: DaemonConfig, routes: tuple[Route, ...] = ()) -> None:
        self.config = config
        self.routes = routes
        # every secret field of the configuration, whatever its shape; a short one is warned of
        register_secrets(secrets_of(config))
        self.metrics = Metrics()
        self.probes = Probes()
        self.client = IlertClient(api_url=config.ilert.api_url, beat_url=config.ilert.beat_url,
                                  timeout=config.ilert.timeout,
                                  max_connections=max(config.max_in_flight, 10),
                                  api_key=config.api_key)
        # --rate_limit_per_key 0 (pacing off) turns the policy bucket off too
        self.pacer = Pacer(per_key=config.rate_limit_per_key, total=config.rate_limit_total,
                           per_heartbeat=HEARTBEAT_PINGS_PER_MINUTE,
                           per_policy=DEFAULT_POLICY_UPDATES_PER_MINUTE
                           if config.rate_limit_per_key else 0)
        self.gate = Gate(rate_limit_delay=config.retry.rate_limit_delay,
                         failures_to_open=config.circuit_failures,
                         probe_interval=config.circuit_probe_interval,
                         max_block=max(config.retry.max_delay, config.retry.rate_limit_delay))
        self.gate.listeners.append(self._circuit_moved)
        policies = (PolicySync(client=self.client, metrics=self.metrics)
                    if config.api_key else None)
        self.journal = (Journal(config.journal, max_bytes=config.journal_max_bytes,
                                metrics=self.metrics) if config.journal else None)
        self.deliverer = Deliverer(client=self.client, policy=config.retry, pacer=self.pacer,
                                   metrics=self.metrics, max_in_flight=config.max_in_flight,
                                   gate=self.gate, policies=policies, recorder=self.journal)
        self.producer = kafka_spool(config, metrics=self.metrics)  # --spool kafka:TOPIC; None: the SQLite file
        self.store: QueueStore | None = None
        self.worker: SpoolWorker | None = None
        self.lock: SpoolLock | None = None
        if self.producer is None and ((config.http is not None and config.http.intake)
                                      or (config.mqtt is not None and config.mqtt.buffer)):
            self.lock = SpoolLock(config.db_file)
            # one engine for every source: one --max_in_flight, one pacing towards ilert;
            # queued events carry the queue's own retry limit
            self.store = QueueStore(config.db_file, max_bytes=config.spool_max_bytes)
            self.worker = SpoolWorker(store=self.store, deliverer=self.deliverer,
                                      metrics=self.metrics, max_event_age=config.max_event_age)
        self.mqtt: MqttBridge | None = None
        if config.mqtt is not None:
            from ilagent.mqtt.bridge import MqttBridge  # paho only when MQTT is used

            self.mqtt = MqttBridge(settings=config.mqtt, rules=config.rules,
                                   policy_rules=config.policy,
                                   deliverer=self.deliverer, metrics=self.metrics,
                                   store=self.store, sink=self.producer,
                                   notify=self.worker.notify if self.worker else None,
                                   max_event_age=config.max_event_age, routes=routes)
        self.bridge: KafkaBridge | None = None
        if config.kafka is not None:
            from ilagent.kafka.bridge import KafkaBridge  # librdkafka only when Kafka is used

            self.bridge = KafkaBridge(settings=config.kafka, rules=config.rules,
                                      policy_rules=config.policy,
                                      deliverer=self.deliverer, metrics=self.metrics,
                                      policy=config.retry, max_event_age=config.max_event_age,
                                      routes=routes, spool_reader=spool_reader(
                                          self.mqtt.convert_legacy if self.mqtt else None))
        self.drills = self._drill_desk()  # fire drills; None when off
        heads: list[Callable[[], Iterable[Head]]] = []
        if self.bridge is not None:
            heads.append(self.bridge.heads)
        if self.mqtt is not None:
            heads.append(self.mqtt.heads)
        self.watch = StuckWatch(metrics=self.metrics, sources=heads,
                                stuck_after=config.stuck_after)
        # the local alarm when ilert stays out of reach; None without a --fallback_* channel
        self.fallback = build_fallback(config, metrics=self.metrics, client=self.client,
                                       deliverer=self.deliverer, worker=self.worker)
        if self.fallback is not None:
            self.gate.listeners.append(self.fallback.circuit_moved)
        self._stop = asyncio.Event()
        self._exit_code = 0
        self._signals = 0
        self._fatal = ""  # a misconfiguration found at start; the daemon exits 2 with it
        self._access: Access | None = None  # the HTTP server's guard (its token file)

    def request_stop(self, exit_code: int = 0) -> None:
        """Begin the shutdown sequence."""
        self._exit_code = self._exit_code or exit_code
        self._stop.set()

    async def run(self) -> int:
        """Start every configured part, wait for a stop request, then shut down in order."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self._reload()))
        logger.debug("configuration: %r", self.config)
        runner: web.AppRunner | None = None
        tasks: list[asyncio.Task[Any]] = []
        try:
            # what can refuse the configuration goes first, before anything needs undoing
            if self.lock is not None:
                self.lock.acquire()
            if self.journal is not None:  # before any event can end
                await self.journal.open()
                tasks.append(loop.create_task(self.journal.run()))
            await self.client.start()  # before any source: a message may come at once
            if self.bridge is not None:
                self.bridge.start()
                self.probes.parts["kafka"] = self.bridge.readiness
                tasks.append(loop.create_task(self._watch_bridge()))
            if self.producer is not None:
                self.producer.start()
                self.probes.parts[spool_part(self.config)] = self.producer.readiness
            if self.store is not None:
                await open_queue(self.store,
                                 convert_mqtt=self.mqtt.convert_legacy if self.mqtt else None)
            runner = await self._start_http()
        except BaseException:
            await self._shutdown(runner, tasks, quiet=True)
            raise
        if self.worker is not None:
            self.worker.start(convert_mqtt=self.mqtt.convert_legacy if self.mqtt else None)
            self.probes.parts[spool_part(self.config)] = self.worker.readiness
        if self.mqtt is not None:
            self.mqtt.start()
            self.probes.parts["mqtt"] = self.mqtt.connection.readiness
            tasks.append(loop.create_task(self._watch_mqtt()))
        if self.drills is not None:
            tasks.append(loop.create_task(self.drills.run(self._stop)))
        self.probes.details = self._details
        tasks.append(loop.create_task(self._watch_stuck()))
        if self.config.heartbeat_key:  # our own heartbeat (-b), every interval while ready
            tasks.append(loop.create_task(ping_while_ready(
                self.config.heartbeat_key, client=self.client, probes=self.probes,
                metrics=self.metrics, interval=self.config.heartbeat_interval, stop=self._stop)))
        if self.fallback is not None:  # cancelled with the others at shutdown step 2
            tasks.append(loop.create_task(self.fallback.run()))
        log_summary(self.config, self.routes)
        logger.info("ilagent daemon running (ilert at %s)", self.config.ilert.api_url)
        await self._stop.wait()
        await self._shutdown(runner, tasks, quiet=bool(self._fatal))
        if self._fatal:  # one line from the command line, exit 2
            raise ConfigError(self._fatal)
        return self._exit_code

    def _drill_desk(self) -> DrillDesk | None:
        """Fire drills through each drilled source; the sources hand drill messages to it."""
        settings = self.config.drill
        if settings is None:
            return None
        senders: list[DrillSender] = []
        if settings.kafka_topic and self.bridge is not None and self.config.kafka is not None:
            from ilagent.kafka.drills import KafkaDrills

            senders.append(KafkaDrills(settings=self.config.kafka, bridge=self.bridge,
                                       topic=settings.kafka_topic, timeout=settings.timeout))
        if settings.mqtt_topic and self.mqtt is not None:
            from ilagent.mqtt.drills import MqttDrills

            senders.append(MqttDrills(connection=self.mqtt.connection,
                                      topic=settings.mqtt_topic))
        if settings.intake and self.config.http is not None:
            from ilagent.drills.sending import IntakeDrills

            senders.append(IntakeDrills(settings=self.config.http, timeout=settings.timeout))
        desk = DrillDesk(settings=settings, senders=senders, deliverer=self.deliverer,
                         client=self.client, metrics=self.metrics, retry=self.config.retry,
                         ready=lambda: not self.probes.failures(), stop=self.request_stop)
        for source in (self.bridge, self.mqtt, self.worker):
            if source is not None:
                source.drills = desk
        return desk

    def _circuit_moved(self, is_open: bool) -> None:
        self.metrics.circuit_open.set(1 if is_open else 0)
        self.metrics.circuit_transitions.labels("open" if is_open else "closed").inc()
        if is_open:
            logger.error("ilert fails for every key: sending only one probe every %.0f s",
                         self.config.circuit_probe_interval)
        else:
            logger.warning("ilert answers again: %d waiting deliveries resume",
                           self.deliverer.pending)

    def _on_signal(self, sig: signal.Signals) -> None:
        self._signals += 1
        if self._signals > 1:
            logger.warning("second %s: exiting at once", sig.name)
            os._exit(1)
        logger.warning("%s received: shutting down", sig.name)
        self.request_stop()

    async def _reload(self) -> None:
        """SIGHUP: the routes of the config file and the token file, read again
        (:mod:`ilagent.reload`)."""
        logger.warning("SIGHUP received: reading the routes and the token file again")
        if self.config.config_file is not None:
            kafka, mqtt = self.config.kafka, self.config.mqtt
            reload_routes(self.config.config_file,
                          [source for source in (self.bridge, self.mqtt) if source is not None],
                          kafka_topics=kafka.event_topics if kafka else (),
                          mqtt_topics=mqtt.event_topics if mqtt else ())
        if self._access is not None:
            await self._access.reload_now()

    async def _start_http(self) -> web.AppRunner | None:
        http = self.config.http
        if http is None:
            return None
        # the HTTP server's modules, aiohttp's among them, only in a daemon that serves HTTP:
        # one that does not (ilert's Kafka guide's command line) is a sixth smaller (README)
        from ilagent.web.heartbeats import HeartbeatProxy
        from ilagent.web.intake import Intake
        from ilagent.web.server import ACCESS, build_app, serve
        from ilagent.web.trace import TraceRoute

        app = build_app(metrics=self.metrics, probes=self.probes, settings=http)
        self._access = app[ACCESS]
        TraceRoute(self.journal).add_routes(app)
        sink = intake_sink(store=self.store, worker=self.worker, producer=self.producer)
        if http.intake and sink is not None:
            Intake(sink=sink, metrics=self.metrics, max_body=http.max_body).add_routes(app)
            HeartbeatProxy(deliverer=self.deliverer, gate=self.gate, pacer=self.pacer,
                           metrics=self.metrics).add_routes(app)
        return await serve(app, http)

    async def _shutdown(self, runner: web.AppRunner | None, tasks: list[asyncio.Task[Any]],
                        *, quiet: bool = False) -> None:
        """Stop in order; ``quiet`` after a failed start (nothing was running yet to report)."""
        step = logger.debug if quiet else logger.info
        self.probes.shutting_down = True
        timeout = self.config.shutdown_timeout
        deadline = time.monotonic() + timeout
        step("shutdown 1/4: stop fetching from Kafka and MQTT and loading from the queue")
        if self.bridge is not None:
            self.bridge.stop_fetching()
        if self.mqtt is not None:
            self.mqtt.stop_fetching()
        if self.worker is not None:
            self.worker.stop_loading()
        step("shutdown 2/4: waiting up to %.0f s for %d unfinished deliveries", timeout,
             self.deliverer.pending)
        if not await self.deliverer.stop(timeout):
            logger.warning("unfinished deliveries left for redelivery after restart")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        step("shutdown 3/4: commit offsets, leave the consumer group, acknowledge and "
             "disconnect from MQTT")
        if self.bridge is not None:  # dead letters and the final commit: what is left
            await self.bridge.close(timeout=deadline - time.monotonic())
        if self.mqtt is not None:  # queue writes (buffer mode) get what is left of the deadline
            await self.mqtt.close(timeout=deadline - time.monotonic())
        if self.worker is not None:
            await self.worker.close()
        step("shutdown 4/4: stop the HTTP server, close the queue file and the journal")
        if runner is not None:
            await runner.cleanup()
        if self.producer is not None:
            await self.producer.close()
        if self.store is not None:
            await self.store.close()
        if self.journal is not None:  # what ended since its last write, then the file
            await self.journal.close()
        await self.client.close()
        if self.lock is not None:
            self.lock.release()
        step("ilagent daemon stopped")

    async def _watch_bridge(self) -> None:
        """Stop the daemon when the consumer ended, or could never start as configured."""
        bridge = self.bridge
        assert bridge is not None and self.config.kafka is not None
        limit = self.config.kafka.connect_timeout
        started = time.monotonic()
        while not bridge.exited:
            if bridge.fatal:
                self._fatal = bridge.fatal
            elif limit and not bridge.ever_ready and time.monotonic() - started > limit:
                self._fatal = (f"no Kafka broker could be reached within {limit:g} s "
                               f"(--kafka_connect_timeout): {bridge.last_error or 'no answer'}")
            if self._fatal:
                self.request_stop(exit_code=EXIT_USAGE)
                return
            await asyncio.sleep(0.2)
        if not self._stop.is_set():
            logger.error("the Kafka consumer stopped unexpectedly (%s); shutting down",
                         bridge.last_error)
            self.request_stop(exit_code=1)

    async def _watch_mqtt(self) -> None:
        """Stop the daemon (exit 2) when MQTT could never start, or within --mqtt_connect_timeout."""
        assert self.mqtt is not None
        connection, limit = self.mqtt.connection, self.mqtt.connection.settings.connect_timeout
        with contextlib.suppress(TimeoutError):  # the wait ends, the connection goes on
            await asyncio.wait_for(connection.ended(), limit or None)
        if limit and not (connection.ever_connected or connection.fatal or self._stop.is_set()):
            self._fatal = (f"no MQTT broker could be reached within {limit:g} s "
                           f"(--mqtt_connect_timeout): {connection.last_error or 'no answer'}")
            self.request_stop(exit_code=EXIT_USAGE)
            return
        await connection.ended()
        if self._stop.is_set():
            return
        if connection.fatal:
            self._fatal = connection.fatal
            self.request_stop(exit_code=EXIT_USAGE)
        else:
            logger.error("the MQTT connection stopped unexpectedly (%s); shutting down",
                         connection.last_error or "see above")
            self.request_stop(exit_code=1)

    async def _watch_stuck(self) -> None:
        """Refresh the oldest-unfinished gauges and report stuck messages, now and then."""
        while True:
            self.watch.check()
            await asyncio.sleep(CHECK_INTERVAL)

    def _details(self) -> dict[str, Any]:
        """What ``/health?details`` says: ilert's state (and the gauge that mirrors it) and the
        messages that are stuck."""
        failing_since = self.client.last_connection_failure
        self.metrics.ilert_reachable.set(1 if failing_since is None else 0)
        unreachable = None if failing_since is None else round(time.monotonic() - failing_since, 1)
        return {"ilert": {"url": self.config.ilert.api_url, "reachable": failing_since is None,
                          "unreachable_seconds": unreachable,
                          "circuit": "open" if self.gate.open else "closed"},
                "stuck": self.watch.stuck}

def run(config: DaemonConfig, routes: tuple[Route, ...] = ()) -> int:
    """Run the daemon until it is stopped; return its exit code (on uvloop where installed)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(Daemon(config, routes).run())
    return uvloop.run(Daemon(config, routes).run())
