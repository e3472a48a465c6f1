"""Fire drills: the daemon proves its own alert path before a real incident needs it.

* :mod:`~ilagent.drills.marks` — how a drill message is marked in each source, and how a source
  hands one over (never as a real alarm);
* :mod:`~ilagent.drills.events` — what a drill sends to ilert: a RESOLVE for
  ``ilagent-drill-<source>`` on each integration key the user's mapping produced (pure);
* :mod:`~ilagent.drills.rounds` — one drill followed stage by stage: sent, consumed, mapped,
  delivered (pure, with an injected clock);
* :mod:`~ilagent.drills.sending` — a drilled source's sender, and the HTTP intake's;
* :mod:`~ilagent.drills.desk` — the schedule, the deadline, metrics, logs and the drill
  heartbeat;
* :mod:`~ilagent.drills.report` — a drill in words (the log, ``ilagent drill``).

Sits above the delivery engine and the mapping and below the sources, which hand drill
messages in; the Kafka and MQTT senders live with their source (``kafka/drills.py``,
``mqtt/drills.py``), the only places their client libraries may be loaded. ``daemon.py`` wires
them together.
"""
