"""Every metric of the daemon, defined once, in a registry of its own (Prometheus text format)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

# the *_created series double the output and no dashboard uses them
disable_created_metrics()  # type: ignore[no-untyped-call]

# the brokers' acknowledgement of a spooled event: milliseconds on a healthy cluster, up to
# --spool_produce_timeout (default 5 s) when it struggles
PRODUCE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                   30.0)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   300.0, 900.0)


class DrillMetrics:
    """Fire drills (:mod:`ilagent.drills`), per drilled source (kafka, mqtt, http)."""

    def __init__(self, r: CollectorRegistry) -> None:
        self.runs = Counter("ilagent_drills", "Drills by result: passed, failed, or skipped (a "
                            "Kafka member owning no partition of the drill topic).",
                            ["source", "result"], registry=r)
        self.last = Gauge("ilagent_drill_last_timestamp_seconds",
                          "Unix time the last drill of the source ended.", ["source"], registry=r)
        self.success = Gauge("ilagent_drill_success",
                             "1 when the last drill of the source passed (or was skipped), 0 "
                             "when it failed.", ["source"], registry=r)
        self.seconds = Gauge("ilagent_drill_duration_seconds",
                             "End-to-end seconds of the last drill of the source: from its start "
                             "to delivered (to the failure when it failed).", ["source"],
                             registry=r)
        self.failed_stage = Gauge("ilagent_drill_failed_stage",
                                  "1 for the stage at which the last drill of the source failed "
                                  "(sent, consumed, mapped, delivered), 0 for the others.",
                                  ["source", "stage"], registry=r)
        self.failures = Counter("ilagent_drill_failures", "Failed drills by the stage that "
                                "failed.", ["source", "stage"], registry=r)
        self.unknown = Counter("ilagent_drill_unknown_messages",
                               "Drill-marked messages of a drill this daemon does not run "
                               "(another replica's, or one from before a restart): finished "
                               "without sending anything.", ["source"], registry=r)


class Metrics:
    """The daemon's counters; one instance per daemon, so tests may run several in a process."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.consumed = Counter("ilagent_messages_consumed", "Messages read from a source.",
                                ["source"], registry=r)
        # route: the [[route]] whose mapping it went through ("default": the mapping flags';
        # "": none, as for heartbeats, policy updates and the HTTP intake)
        self.filtered = Counter("ilagent_messages_filtered",
                                "Messages dropped on purpose: by the filter flags, or by a "
                                "route's match (once for each route of its topic).",
                                ["source", "route"], registry=r)
        self.delivered = Counter("ilagent_events_delivered", "Events ilert accepted.",
                                 ["source", "route"], registry=r)
        self.route_matched = Counter("ilagent_route_matched",
                                     "Messages a route took (each yields one event).",
                                     ["source", "route"], registry=r)
        self.mapping_missing = Counter("ilagent_mapping_missing",
                                       "Events whose mapped field the message did not have "
                                       "(mapping drift: alertKey above all).",
                                       ["route", "field"], registry=r)
        self.template_errors = Counter("ilagent_template_errors",
                                       "Template renders that failed; the event went with a "
                                       "fallback text.", ["route", "field"], registry=r)
        self.heartbeats = Counter("ilagent_heartbeats_sent", "Heartbeat pings ilert accepted.",
                                  ["source"], registry=r)
        self.drill = DrillMetrics(r)
        self.retried = Counter("ilagent_delivery_retries",
                               "Failed attempts that will be retried.", ["source", "reason"],
                               registry=r)
        self.dead_lettered = Counter("ilagent_messages_dead_lettered",
                                     "Messages judged undeliverable for good.",
                                     ["source", "reason", "route"], registry=r)
        self.responses = Counter("ilagent_ilert_responses",
                                 "Answers from ilert by HTTP status (network_error without one).",
                                 ["status"], registry=r)
        self.latency = Histogram("ilagent_delivery_latency_seconds",
                                 "From receipt of a message to ilert's acceptance of its event.",
                                 ["source"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("ilagent_events_in_flight",
                               "Events received and not yet finished.", registry=r)
        self.rate_limit_waits = Counter("ilagent_rate_limit_waits",
                                        "Sends held back by pacing or by a 429.", ["scope"],
                                        registry=r)
        self.gate_waits = Counter("ilagent_gate_waits",
                                  "Sends held back by a 429 block, single flight or the open "
                                  "circuit.", ["reason"], registry=r)
        self.circuit_open = Gauge("ilagent_ilert_circuit_open",
                                  "1 while ilert fails for every key and only probes are sent.",
                                  registry=r)
        self.circuit_transitions = Counter("ilagent_ilert_circuit_transitions",
                                           "Times the circuit opened or closed.", ["state"],
                                           registry=r)
        self.key_blocked = Gauge("ilagent_key_blocked_seconds",
                                 "Length of a key's current 429 block (0: not blocked).",
                                 ["key"], registry=r)
        self.heartbeats_coalesced = Counter("ilagent_heartbeats_coalesced",
                                            "Queued heartbeat pings made needless by a newer one.",
                                            ["source"], registry=r)
        self.held_back = Gauge("ilagent_kafka_partition_held_back",
                               "Messages buffered behind the oldest unfinished one of a paused "
                               "partition, by the (masked) key of that message.",
                               ["topic", "partition", "key"], registry=r)
        self.ready = Gauge("ilagent_ready", "1 while the part can do its work (as /ready/<part>).",
                           ["component"], registry=r)
        self.ilert_reachable = Gauge("ilagent_ilert_reachable",
                                     "0 while requests to ilert fail without an answer.",
                                     registry=r)
        self.kafka_errors = Counter("ilagent_kafka_errors",
                                    "Errors librdkafka reported (broker down, transport, "
                                    "authentication), by librdkafka's error name.", ["error"],
                                    registry=r)
        self.consumer_lag = Gauge("ilagent_kafka_consumer_lag",
                                  "High watermark minus committed position.",
                                  ["topic", "partition"], registry=r)
        self.paused_partitions = Gauge("ilagent_kafka_paused_partitions",
                                       "Partitions paused for backpressure.", registry=r)
        self.rebalances = Counter("ilagent_kafka_rebalances", "Partition assignment changes.",
                                  ["kind"], registry=r)
        self.commit_failures = Counter("ilagent_kafka_commit_failures",
                                       "Offset commits the broker refused or that timed out.",
                                       registry=r)
        self.finished_skipped = Counter("ilagent_kafka_finished_skipped",
                                        "Messages read again after a restart or rebalance and "
                                        "not sent, because the committed offset map lists them "
                                        "as finished.", registry=r)
        self.oldest_unfinished = Gauge("ilagent_oldest_unfinished_seconds",
                                       "Age of the oldest unfinished message of a partition "
                                       "(Kafka) or connection (MQTT); 0 when none waits.",
                                       ["source", "topic", "partition"], registry=r)
        self.mqtt_connected = Gauge("ilagent_mqtt_connected",
                                    "1 while connected to the MQTT broker.", registry=r)
        self.mqtt_reconnects = Counter("ilagent_mqtt_reconnects",
                                       "Connection attempts after a failed or lost connection.",
                                       registry=r)
        self.mqtt_acks = Counter("ilagent_mqtt_acks",
                                 "QoS 1 messages acknowledged to the broker after they ended.",
                                 registry=r)
        self.mqtt_unacked = Gauge("ilagent_mqtt_unacknowledged",
                                  "QoS 1 messages received and not yet acknowledged.", registry=r)
        self.policy_updates = Counter("ilagent_policy_updates",
                                      "Escalation-policy levels ilert updated.", ["source"],
                                      registry=r)
        self.policy_key_refused = Gauge("ilagent_policy_api_key_refused",
                                        "1 while ilert refuses the API key of policy sync "
                                        "(401/403); the updates wait.", registry=r)
        self.queue_depth = Gauge("ilagent_queue_depth", "Events waiting in the durable queue.",
                                 registry=r)
        self.queue_oldest_age = Gauge("ilagent_queue_oldest_age_seconds",
                                      "Age of the oldest event in the durable queue.",
                                      registry=r)
        self.queue_dead_letters = Gauge("ilagent_queue_dead_letters",
                                        "Events kept in the queue's dead-letter table.",
                                        registry=r)
        self.intake = Counter("ilagent_http_intake", "Answers of the HTTP event intake by status.",
                              ["status"], registry=r)
        self.spool_produced = Counter("ilagent_spool_produced",
                                      "Events written to the Kafka spool (--spool kafka:TOPIC), "
                                      "by result: acked, refused, timeout (may still be "
                                      "stored), shutdown.", ["result"], registry=r)
        self.spool_produce_seconds = Histogram("ilagent_spool_produce_seconds",
                                               "Wait for the brokers' acknowledgement of an "
                                               "event written to the Kafka spool (acked ones).",
                                               buckets=PRODUCE_BUCKETS, registry=r)
        self.fallback_alarms = Counter("ilagent_fallback_alarms",
                                       "Local fallback notices sent while ilert was out of reach, "
                                       "by channel and kind (ilert_unreachable, reminder, "
                                       "all_clear).", ["channel", "kind"], registry=r)
        self.fallback_failures = Counter("ilagent_fallback_failures",
                                         "Local fallback notices a channel could not send.",
                                         ["channel"], registry=r)
        self.fallback_raised = Gauge("ilagent_fallback_raised",
                                     "1 while the local alarm is raised (the circuit open longer "
                                     "than --fallback_after).", registry=r)
        self.journal = Counter("ilagent_journal_events",
                               "Events the journal (--journal) wrote, or dropped because its "
                               "file refused the write or its buffer was full.", ["result"],
                               registry=r)

    def render(self) -> bytes:
        """The registry in Prometheus text exposition format."""
        return generate_latest(self.registry)
