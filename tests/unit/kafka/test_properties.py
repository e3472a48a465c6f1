"""Java client.properties files read, and translated for librdkafka or refused by name."""

from __future__ import annotations

import pytest

from ilagent.errors import ConfigError
from ilagent.kafka.properties import for_librdkafka, parse_properties


def test_the_java_properties_format() -> None:
    """Comments, =, : and blank separators, continuation lines and escapes."""
    text = ("# comment\n! also a comment\n\na=1\nb : two words\nc three\n"
            "d=first \\\n   second\ne=tab\\there\\u0041\nf\\=g=h\n  indented=yes\n")
    assert parse_properties(text) == [
        ("a", "1"), ("b", "two words"), ("c", "three"), ("d", "first second"),
        ("e", "tab\thereA"), ("f=g", "h"), ("indented", "yes")]


def test_java_s_own_edge_cases() -> None:
    """As Java's Properties reads them: only space, tab and form feed start a line (a no-break
    space belongs to the key), and a malformed \\uXXXX escape is an error, not a literal u."""
    assert parse_properties("\u00a0key=v\n\f\tk2 = v2\n") == [("\u00a0key", "v"), ("k2", "v2")]
    with pytest.raises(ConfigError, match=r"\\uZZZZ"):
        parse_properties("sasl.username=\\uZZZZ\n")


@pytest.mark.parametrize("module", [
    "org.apache.kafka.common.security.scram.ScramLoginModule",
    "org.apache.kafka.common.security.plain.PlainLoginModule",
])
def test_jaas_of_plain_and_scram_becomes_username_and_password(module: str) -> None:
    """sasl.jaas.config turns into what librdkafka reads."""
    pairs = [("sasl.jaas.config", f'{module} required username="alice" password="s3 cr=t";')]
    assert for_librdkafka(pairs, origin="f") == [("sasl.username", "alice"),
                                                 ("sasl.password", "s3 cr=t")]


@pytest.mark.parametrize(("key", "value", "named"), [
    ("ssl.truststore.location", "/x/truststore.jks", "ssl.truststore.location"),
    ("ssl.keystore.type", "PKCS12", "ssl.keystore.type"),
    ("key.deserializer", "org.apache.kafka.common.serialization.StringDeserializer",
     "key.deserializer"),
    ("sasl.jaas.config", "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule "
                         "required;", "sasl.jaas.config"),
])
def test_java_only_settings_are_refused_by_name(key: str, value: str, named: str) -> None:
    """What librdkafka cannot have is one error naming the key and the file."""
    with pytest.raises(ConfigError, match=named) as refused:
        for_librdkafka([(key, value)], origin="client.properties")
    assert "client.properties" in str(refused.value)


def test_other_settings_pass_through() -> None:
    """Everything else goes to librdkafka as it is (which refuses what it does not know)."""
    assert for_librdkafka([("security.protocol", "SSL"), ("x.y", "1")], origin="f") == [
        ("security.protocol", "SSL"), ("x.y", "1")]
