"""The local fallback: a local alarm when ilert stays out of reach (``--fallback_*``).

* ``alarm.py`` decides when to raise the alarm, remind and give the all-clear, and what each
  notice says (pure: every decision takes the time it is made);
* ``channels.py`` sends a notice by webhook, by mail through a local relay, or over MQTT
  (through :mod:`ilagent.mqtt.publisher`, loaded only when that channel is configured);
* ``runner.py`` follows the shared circuit, sends each notice through every channel with a
  timeout, and counts.

The fallback adds a signal and never replaces ilert: events keep waiting for ilert and are
delivered when it answers again. Sits between the daemon and the sources: it may import them
(the MQTT publisher), delivery, the spool, the client, the core and the foundation — never the
daemon or the commands.
"""
