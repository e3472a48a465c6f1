"""Kafka client settings from Java clients' ``client.properties`` files, made fit for librdkafka.

The file format is Java's ``.properties`` (``#`` and ``!`` comments, ``key=value``,
``key: value`` or ``key value``, continuation lines, backslash escapes), read by
``javaproperties``, which follows ``java.util.Properties`` in its edge cases (which whitespace
starts a line, odd and even trailing backslashes, a malformed ``\\uXXXX`` escape is an error).
The file is read as UTF-8 (Java's ``load(InputStream)`` reads Latin-1; ``\\u`` escapes mean the
same in both). Then what only Java understands is translated or refused:

* ``sasl.jaas.config`` with the PLAIN or SCRAM login module becomes ``sasl.username`` and
  ``sasl.password``; any other login module is refused.
* JKS/PKCS12 key and trust stores (``ssl.keystore.*``, ``ssl.truststore.*``) are refused with a
  hint to use PEM files (``ssl.ca.location``, ``ssl.certificate.location``, ``ssl.key.location``).
* Java class names and (de)serializers are refused. Everything else goes to librdkafka, which
  refuses what it does not know, by name.

Pure: no librdkafka here (the commands parse files before any client exists).
"""

from __future__ import annotations

import re

import javaproperties

from ilagent.errors import ConfigError

_JAAS = re.compile(
    r"^\s*org\.apache\.kafka\.common\.security\.(plain\.PlainLoginModule|"
    r"scram\.ScramLoginModule)\s+required\b(?P<options>.*?);?\s*$", re.DOTALL)
_OPTION = re.compile(r"""(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|(\S+?))(?=\s|;|$)""")
_JAVA_ONLY = frozenset({
    "key.serializer", "value.serializer", "key.deserializer", "value.deserializer",
    "interceptor.classes", "partitioner.class", "security.providers", "ssl.protocol",
    "ssl.enabled.protocols", "ssl.keymanager.algorithm", "ssl.trustmanager.algorithm",
    "ssl.secure.random.implementation", "ssl.engine.factory.class", "default.api.timeout.ms",
    "sasl.login.callback.handler.class", "sasl.client.callback.handler.class",
    "sasl.login.class",
})
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def parse_properties(text: str) -> list[tuple[str, str]]:
    """The ``(key, value)`` pairs of a Java properties text, in file order; ``ConfigError`` for
    a text Java would refuse (a malformed ``\\uXXXX`` escape)."""
    try:
        return [(element.key, element.value) for element in javaproperties.parse(text)
                if isinstance(element, javaproperties.KeyValue)]
    except javaproperties.InvalidUEscapeError as exc:
        raise ConfigError(f"not a Java properties file: {exc}") from None


def _unescape(text: str) -> str:
    """A backslash-escaped JAAS option value (``\\"``, ``\\\\``, ``\\t``, …) as plain text."""
    out, index = [], 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            out.append(_ESCAPES.get(text[index + 1], text[index + 1]))
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def for_librdkafka(pairs: list[tuple[str, str]], *, origin: str) -> list[tuple[str, str]]:
    """Translate Java-only settings (see the module docstring); raise ``ConfigError`` naming
    what cannot be translated, with ``origin`` (the file) in the message."""
    out: list[tuple[str, str]] = []
    for key, value in pairs:
        if key == "sasl.jaas.config":
            out += _jaas(value, origin=origin)
        elif key.startswith(("ssl.keystore.", "ssl.truststore.")):
            raise ConfigError(
                f"{origin}: {key} is a Java key or trust store; librdkafka reads PEM files: "
                "use ssl.ca.location, ssl.certificate.location and ssl.key.location (or "
                "--kafka_ssl_ca, --kafka_ssl_cert, --kafka_ssl_key)")
        elif key in _JAVA_ONLY or key.endswith(".class"):
            raise ConfigError(f"{origin}: {key} is a Java client setting librdkafka does not "
                              "have; remove it")
        else:
            out.append((key, value))
    return out


def _jaas(value: str, *, origin: str) -> list[tuple[str, str]]:
    match = _JAAS.match(value)
    if match is None:
        raise ConfigError(f"{origin}: sasl.jaas.config: only the PLAIN and SCRAM login modules "
                          "can be translated; give sasl.username and sasl.password instead")
    options = {m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
               for m in _OPTION.finditer(match.group("options"))}
    if "username" not in options or "password" not in options:
        raise ConfigError(f"{origin}: sasl.jaas.config needs username and password")
    return [("sasl.username", _unescape(options["username"])),
            ("sasl.password", _unescape(options["password"]))]
