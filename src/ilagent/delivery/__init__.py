"""Getting jobs to ilert: the delivery engine and what decides each send.

* :mod:`~ilagent.delivery.job` — a job, its owner and how it ended;
* :mod:`~ilagent.delivery.engine` — the engine: ordered lanes, bounded concurrency, retries,
  dead letters, stale events;
* :mod:`~ilagent.delivery.sender` — one attempt: the key's turn, its limits, a slot, the gate,
  the tokens;
* :mod:`~ilagent.delivery.gate` — 429 blocks, single flight, the shared circuit;
* :mod:`~ilagent.delivery.pacing` and :mod:`~ilagent.delivery.backoff` — token buckets and
  retry delays (pure: no network code, pinned by import-linter);
* :mod:`~ilagent.delivery.lanes` — the ordering lane of a job (one alert, one key, one level);
* :mod:`~ilagent.delivery.policy_sync` — the three ilert calls of a policy-level update;
* :mod:`~ilagent.delivery.stuck` — the oldest unfinished message of each source, watched.

Sits above the ilert client and the mapping; the sources (``kafka/``, ``mqtt/``, ``web/``,
``spool/``) use it, it never imports them.
"""
