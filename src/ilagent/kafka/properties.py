"""Kafka client settings from Java clients' ``client.properties`` files, made fit for librdkafka.

The file format is Java's ``.properties``: ``#`` and ``!`` comments, ``key=value``,
``key: value`` or ``key value``, a trailing backslash continues a line, backslash escapes
(``\\t``, ``\\n``, ``\\uXXXX``, escaped separators). Then what only Java understands is
translated or refused:

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
    """The ``(key, value)`` pairs of a Java properties text, in file order."""
    pairs = []
    lines = iter(text.splitlines())
    for raw in lines:
        line = raw.lstrip()
        if not line or line[0] in "#!":
            continue
        while _continues(line):
            line = line[:-1] + next(lines, "").lstrip()
        key, value = _split(line)
        pairs.append((_unescape(key), _unescape(value)))
    return pairs


def _continues(line: str) -> bool:
    """An odd number of trailing backslashes continues the line."""
    return (len(line) - len(line.rstrip("\\"))) % 2 == 1


def _split(line: str) -> tuple[str, str]:
    index = 0
    while index < len(line):
        char = line[index]
        if char == "\\":
            index += 2
            continue
        if char in "=: \t\f":
            break
        index += 1
    key, rest = line[:index], line[index:].lstrip(" \t\f")
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(" \t\f")
    return key, rest


def _unescape(text: str) -> str:
    out, index = [], 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            following = text[index + 1]
            if following == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[index + 2:index + 6]):
                out.append(chr(int(text[index + 2:index + 6], 16)))
                index += 6
                continue
            out.append(_ESCAPES.get(following, following))
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
