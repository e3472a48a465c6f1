"""From a message to what it asks for: the mapping family (pure: no I/O, no client library).

* :mod:`~ilagent.mapping.messages` — ilagent 0.9's message → event rules: dot paths, the
  filter, value maps, the default summary and ``customDetails``;
* :mod:`~ilagent.mapping.policy` — a policy message → an escalation-policy level update;
* :mod:`~ilagent.mapping.topics` — which kind a topic carries (event, heartbeat, policy update),
  through one matcher interface with a Kafka (names, ``^`` regexes) and an MQTT (``+``/``#``
  filters) implementation;
* :mod:`~ilagent.mapping.reading` — one reading of a message of a kind into a ping, an event,
  a policy update, a refusal or nothing (filtered), shared by every source.

Routes and templates belong here too. May import the foundation (``config``, ``errors``,
``logs``) and ``events``; nothing here imports a source, the delivery engine or a client.
"""
