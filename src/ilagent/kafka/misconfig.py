"""What a librdkafka error says is wrong with the connection settings, in words that point at
the setting to fix. Before the first good start such an error ends the daemon (one line, exit
2) and the commands that read a topic; after it, it is logged and waited out like an outage.

librdkafka names TLS and authentication failures itself. A peer that is no Kafka listener at
all it reports only as "Invalid response size N ... increase receive.message.max.bytes": it
read the first four bytes of the peer's answer as the size of a Kafka response. Those bytes
tell who answered (``HTTP``, a TLS alert, ``SSH-``), and raising the limit, as librdkafka
suggests, would never help; so they are named here instead.
"""

from __future__ import annotations

import re

from confluent_kafka import KafkaError

PLAINTEXT_ON_TLS = "Kafka TLS mismatch (a plaintext client on a TLS port? check security.protocol)"
# a peer that hangs up on the first request says no more: a TLS listener, or no Kafka at all
HUNG_UP = ("Kafka's first request was hung up on (a TLS port? check security.protocol; or no "
           "Kafka listener at all? check the host and port in --kafka_brokers)")

# librdkafka reports these as transport errors whose text names the cause
_TLS_HINTS = ("ssl handshake failed", "certificate verify failed", "certificate verification",
              "ssl_ctx", "tls handshake")
_PLAINTEXT_ON_TLS = ("connecting to a ssl listener", "incorrect security.protocol")
_RESPONSE_SIZE = re.compile(r"invalid response size (\d+)")
_ADVICE = re.compile(r": increase receive\.message\.max\.bytes")
_FIRST_REQUEST = "apiversion_query"  # the state of a connection's first request
_SERVERS = {b"HTTP": "an HTTP server", b"SSH-": "an SSH server"}
_TLS_ALERT = b"\x15\x03"  # a TLS alert record's content type, then its major version 3


def misconfiguration(error: KafkaError) -> str:
    """What ``error`` says is wrong with the settings ("" when it is not that); the one line
    that ends a start is :func:`explained`."""
    text = error.str().lower()
    if error.code() in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED) \
            or "authentication failed" in text:
        return "Kafka authentication failed (check the SASL mechanism, user and password)"
    if any(hint in text for hint in _PLAINTEXT_ON_TLS):
        return PLAINTEXT_ON_TLS
    if error.code() == KafkaError._SSL or any(hint in text for hint in _TLS_HINTS):
        return "Kafka TLS handshake failed (check the CA, the certificates and the host name)"
    size = _RESPONSE_SIZE.search(text)
    if size is not None:
        return _not_kafka(int(size.group(1)), first_request=_FIRST_REQUEST in text)
    return ""


def explained(error: KafkaError) -> str:
    """The one line for a misconfiguration: ours, then librdkafka's words without the advice to
    raise receive.message.max.bytes, which never helps when the peer is no Kafka listener."""
    return f"{misconfiguration(error)}: {_ADVICE.sub('', error.str())}"


def _not_kafka(size: int, *, first_request: bool) -> str:
    """Who sent an answer whose first four bytes read as ``size``; "" when they name no other
    protocol and it was not the connection's first request (a real broker's answer can be
    larger than the limit)."""
    head = size.to_bytes(4, "big") if 0 <= size < 1 << 32 else b""
    if head[:2] == _TLS_ALERT:
        return PLAINTEXT_ON_TLS
    server = next((name for prefix, name in _SERVERS.items() if head.startswith(prefix)), None)
    if server is None and not first_request:
        return ""
    return (f"not a Kafka listener: the broker address answered like {server or 'another server'}"
            " (check the host and port in --kafka_brokers)")
