"""Settings from flags, ILAGENT_* variables, ilert's variables, a TOML file, and defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from ilagent.cli import build_parser
from ilagent.commands.daemon import daemon_config, topics
from ilagent.commands.kafka_options import kafka_properties
from ilagent.commands.sources import resolve, settable
from ilagent.errors import ConfigError


def parse(argv: list[str], environ: dict[str, str]) -> tuple[object, object]:
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = parser.commands  # type: ignore[attr-defined]
    known = {n for p in (parser, *commands.values()) for n in settable(p)} | {"kafka_config"}
    sources = resolve(args, [(parser, None), (commands[args.command], None)], argv,
                      known=known, environ=environ)
    return args, sources


def test_a_flag_beats_the_environment_which_beats_the_file(tmp_path: Path) -> None:
    """flag > ILAGENT_* > TOML > default, each recorded with its source."""
    toml = tmp_path / "c.toml"
    toml.write_text('kafka_brokers = "file:1"\nkafka_group_id = "file-group"\nmax_in_flight = 3\n'
                    'event_topic = ["f1", "f2"]\n')
    args, sources = parse(
        ["--config", str(toml), "daemon", "--kafka_brokers", "flag:1"],
        {"ILAGENT_KAFKA_BROKERS": "env:1", "ILAGENT_MAX_IN_FLIGHT": "7"})
    assert (args.kafka_brokers, sources.of["kafka_brokers"]) == ("flag:1", "flag")
    assert (args.max_in_flight, sources.of["max_in_flight"]) == (7, "env ILAGENT_MAX_IN_FLIGHT")
    assert (args.kafka_group_id, sources.of["kafka_group_id"]) == ("file-group",
                                                                   f"file {toml}")
    assert args.event_topic == ["f1", "f2"] and sources.of["shutdown_timeout"] == "default"


def test_ilert_variables_are_aliases_below_ilagent_ones() -> None:
    """ILERT_API_URL still works; ILAGENT_ILERT_API_URL wins over it."""
    args, sources = parse(["daemon"], {"ILERT_API_URL": "http://alias/api"})
    assert (args.ilert_api_url, sources.of["ilert_api_url"]) == ("http://alias/api",
                                                                 "env ILERT_API_URL")
    args, _ = parse(["daemon"], {"ILERT_API_URL": "http://alias/api",
                                 "ILAGENT_ILERT_API_URL": "http://mine/api"})
    assert args.ilert_api_url == "http://mine/api"


def test_environment_lists_split_on_commas_but_not_regexes() -> None:
    """-e from the environment: a,b is two topics; ^a,b is one regex."""
    args, _ = parse(["daemon"], {"ILAGENT_EVENT_TOPIC": "a, b"})
    assert args.event_topic == ["a", "b"]
    args, _ = parse(["daemon"], {"ILAGENT_EVENT_TOPIC": "^a{1,2}"})
    assert args.event_topic == ["^a{1,2}"]
    args, _ = parse(["daemon"], {"ILAGENT_KAFKA_CONFIG": "a.b=1;c.d=x=y"})
    assert args.kafka_config == [("a.b", "1"), ("c.d", "x=y")]


def test_a_list_on_the_command_line_replaces_the_others() -> None:
    """-e on the command line: the environment's topics are not added."""
    args, _ = parse(["daemon", "-e", "mine"], {"ILAGENT_EVENT_TOPIC": "theirs"})
    assert args.event_topic == ["mine"]


@pytest.mark.parametrize(("environ", "message"), [
    ({"ILAGENT_MAX_IN_FLIGHT": "many"}, "ILAGENT_MAX_IN_FLIGHT"),
    ({"ILAGENT_FORWARD_MESSAGE_PAYLOAD": "perhaps"}, "ILAGENT_FORWARD_MESSAGE_PAYLOAD"),
    ({"ILAGENT_KAFKA_OFFSET_RESET": "middle"}, "ILAGENT_KAFKA_OFFSET_RESET"),
])
def test_a_bad_environment_value_names_the_variable(environ: dict[str, str],
                                                    message: str) -> None:
    """A value a flag would refuse is refused from the environment too, naming the variable."""
    with pytest.raises(ConfigError, match=message):
        parse(["daemon"], environ)


def test_unknown_toml_keys_are_refused_and_other_commands_keys_ignored(tmp_path: Path) -> None:
    """A typo in the file is an error; a key of another command does not disturb."""
    toml = tmp_path / "c.toml"
    toml.write_text('kafka_brokerz = "x"\n')
    with pytest.raises(ConfigError, match="kafka_brokerz"):
        parse(["--config", str(toml), "daemon"], {})
    toml.write_text('retries = 5\n')  # an event/heartbeat option
    args, _ = parse(["--config", str(toml), "daemon"], {})
    assert not hasattr(args, "retries")


def test_confirmations_and_the_sandbox_port_never_come_from_outside() -> None:
    """--yes, --all and the sandbox's --port are only read from the command line."""
    parser = build_parser()
    commands = parser.commands  # type: ignore[attr-defined]
    assert "port" not in settable(commands["sandbox"], frozenset())
    names = {n for p in commands.values() for n in settable(p)}
    assert not {"yes", "all", "json", "config", "help"} & names


def test_kafka_properties_merge_in_their_order(tmp_path: Path) -> None:
    """TOML table < properties file < --kafka_config < first-class options."""
    props = tmp_path / "client.properties"
    props.write_text("security.protocol=SSL\nsocket.timeout.ms=2000\nclient.rack=r1\n")
    toml = tmp_path / "c.toml"
    toml.write_text('[kafka_config]\n"socket.timeout.ms" = 1000\n"client.rack" = "r0"\n'
                    '"metadata.max.age.ms" = 9\n')
    args, sources = parse(["--config", str(toml), "daemon", "--kafka_brokers", "b:1", "-e", "t",
                           "--kafka_config_file", str(props), "--kafka_config", "client.rack=r2",
                           "--kafka_security_protocol", "sasl_ssl",
                           "--kafka_sasl_mechanism", "plain"], {})
    merged = kafka_properties(args, sources)
    assert merged == {"socket.timeout.ms": "2000", "client.rack": "r2",
                      "metadata.max.age.ms": "9", "security.protocol": "SASL_SSL",
                      "sasl.mechanism": "PLAIN"}
    assert daemon_config(args, sources).kafka is not None


def test_topics_split_on_commas_except_regexes() -> None:
    """-e a,b -e c -e '^x,y' → a, b, c and the regex as given; duplicates once."""
    assert topics(["a,b", "c", "^x,y", "a"]) == ("a", "b", "c", "^x,y")


SERVICE_LINKS = {  # what Kubernetes injects for Services named ilagent and ilagent-mqtt
    "ILAGENT_PORT": "tcp://10.0.0.1:8977", "ILAGENT_SERVICE_HOST": "10.0.0.1",
    "ILAGENT_SERVICE_PORT": "8977", "ILAGENT_SERVICE_PORT_HTTP": "8977",
    "ILAGENT_PORT_8977_TCP": "tcp://10.0.0.1:8977", "ILAGENT_PORT_8977_TCP_PROTO": "tcp",
    "ILAGENT_PORT_8977_TCP_PORT": "8977", "ILAGENT_PORT_8977_TCP_ADDR": "10.0.0.1",
    "ILAGENT_MQTT_PORT": "udp://10.0.0.2:1883", "ILAGENT_MQTT_SERVICE_HOST": "10.0.0.2",
}


def test_kubernetes_service_links_are_not_settings() -> None:
    """A Service named ilagent puts ILAGENT_PORT=tcp://… into every pod: not a setting, no
    error and no warning; a real ILAGENT_PORT still is one."""
    args, sources = parse(["daemon", "--kafka_brokers", "b:1", "-e", "t"], SERVICE_LINKS)
    assert args.port is None and args.mqtt_port == 1883
    assert sources.of["port"] == "default" and sources.warnings == []
    args, sources = parse(["daemon"], {**SERVICE_LINKS, "ILAGENT_PORT": "8977"})
    assert (args.port, sources.of["port"]) == (8977, "env ILAGENT_PORT")


def test_an_unknown_ilagent_variable_is_a_warning_naming_the_closest_option() -> None:
    """ILAGENT_KAFKA_BROKER (a typo) is not ignored in silence; ILAGENT_CONFIG is known."""
    _args, sources = parse(["daemon"], {"ILAGENT_KAFKA_BROKER": "b:1", "ILAGENT_CONFIG": "",
                                        "ILAGENT_XYZZY": "1", "ILAGENT_CONFIGS": "x"})
    assert sources.warnings == [
        "ILAGENT_CONFIGS is not an ilagent setting (did you mean ILAGENT_CONFIG?); ignored",
        "ILAGENT_KAFKA_BROKER is not an ilagent setting (did you mean ILAGENT_KAFKA_BROKERS?); "
        "ignored",
        "ILAGENT_XYZZY is not an ilagent setting; ignored"]
