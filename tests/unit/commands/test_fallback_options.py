"""The ``--fallback_*`` options: the settings they make from flags, environment and file, what
is refused with one line (exit 2), and the webhook masked like a secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ilagent.cli import build_parser, resolve_options
from ilagent.commands.config import _shown
from ilagent.commands.daemon import daemon_config
from ilagent.config import DaemonConfig, FallbackSettings
from ilagent.errors import ConfigError
from ilagent.secret_options import secrets_of

KAFKA = ["--kafka_brokers", "b:9092", "-e", "alarms"]
MQTT = ["-m", "broker", "-e", "alarms", "--mqtt_qos", "1", "-n", "ilagent-plant3"]
HOOK = "https://hooks.example/services/T0/B0/s3cret-hook-token"


def config(*argv: str, environ: dict[str, str] | None = None) -> DaemonConfig:
    parser = build_parser()
    tokens = ["daemon", *argv]
    args = parser.parse_args(tokens)
    return daemon_config(args, resolve_options(parser, args, tokens, environ=environ or {}))


def fallback(*argv: str, environ: dict[str, str] | None = None) -> FallbackSettings:
    settings = config(*argv, environ=environ).fallback
    assert settings is not None
    return settings


def test_without_a_channel_there_is_no_fallback() -> None:
    """The defaults alone configure nothing."""
    assert config(*KAFKA).fallback is None


def test_mqtt_mode_publishes_at_its_own_broker_on_a_connection_of_its_own() -> None:
    """--fallback_mqtt_topic in MQTT mode: the daemon's broker, credentials and version, its
    own client id and no subscriptions."""
    settings = fallback(*MQTT, "--mqtt_username", "u", "--mqtt_password", "mqtt-pw-0123",
                        "--fallback_mqtt_topic", "plant3/ilagent/alarm")
    assert settings.channels == ("mqtt",) and settings.mqtt_topic == "plant3/ilagent/alarm"
    assert settings.mqtt is not None
    assert (settings.mqtt.host, settings.mqtt.port, settings.mqtt.client_id) == (
        "broker", 1883, "ilagent-plant3-fallback")
    assert (settings.mqtt.username, settings.mqtt.password, settings.mqtt.version) == (
        "u", "mqtt-pw-0123", "5")
    assert settings.mqtt.topics == ()
    assert (settings.after, settings.repeat) == (300.0, 1800.0)


def test_a_kafka_daemon_publishes_at_the_fallback_broker() -> None:
    """--fallback_mqtt_host with its port, user and password; MQTT 3.1.1, which any broker
    speaks."""
    settings = fallback(*KAFKA, "--fallback_mqtt_topic", "horn", "--fallback_mqtt_host",
                        "plc.local", "--fallback_mqtt_port", "1884", "--fallback_mqtt_username",
                        "horn", "--fallback_mqtt_password", "horn-pw-0123")
    assert settings.mqtt is not None
    assert (settings.mqtt.host, settings.mqtt.port, settings.mqtt.username,
            settings.mqtt.version) == ("plc.local", 1884, "horn", "3.1.1")
    assert settings.mqtt.client_id.startswith("ilagent-") and settings.mqtt.client_id.endswith(
        "-fallback")
    assert ("mqtt_password", "horn-pw-0123") in set(secrets_of(settings))


def test_mail_takes_a_relay_and_recipients_repeated_or_comma_separated() -> None:
    """HOST:PORT, HOST (port 25) and [IPv6]:PORT relays; recipients in order, once each."""
    settings = fallback(*KAFKA, "--fallback_smtp", "relay.local:2525", "--fallback_mail_to",
                        "ops@plant3.example,shift@plant3.example", "--fallback_mail_to",
                        "ops@plant3.example", "--fallback_mail_from", "ilagent@plant3.example")
    assert (settings.smtp_host, settings.smtp_port, settings.mail_from) == (
        "relay.local", 2525, "ilagent@plant3.example")
    assert settings.mail_to == ("ops@plant3.example", "shift@plant3.example")
    assert fallback(*KAFKA, "--fallback_smtp", "relay", "--fallback_mail_to",
                    "a@b.example").smtp_port == 25
    v6 = fallback(*KAFKA, "--fallback_smtp", "[::1]:25", "--fallback_mail_to", "a@b.example")
    assert (v6.smtp_host, v6.smtp_port, v6.mail_from.startswith("ilagent@")) == ("::1", 25, True)


def test_the_webhook_is_masked_everywhere() -> None:
    """The webhook URL (which may hold a token) is a secret: not in the repr, found by
    secrets_of, hidden whole by config show."""
    daemon = config(*KAFKA, "--fallback_webhook", HOOK, "--fallback_after", "3",
                    "--fallback_repeat", "4")
    settings = daemon.fallback
    assert settings is not None and settings.channels == ("webhook",)
    assert (settings.after, settings.repeat) == (3.0, 4.0)
    assert HOOK not in repr(daemon) and "s3cret-hook-token" not in repr(daemon)
    assert ("fallback_webhook", HOOK) in set(secrets_of(daemon))
    assert _shown("fallback_webhook", HOOK) == "********"


def test_options_come_from_the_environment_and_the_file(tmp_path: Path) -> None:
    """ILAGENT_FALLBACK_* variables and TOML keys work as every daemon option: lists split on
    commas in the environment, arrays in the file; the flag wins."""
    toml = tmp_path / "ilagent.toml"
    toml.write_text('fallback_smtp = "relay:2525"\n'
                    'fallback_mail_to = ["ops@plant3.example", "shift@plant3.example"]\n'
                    'fallback_after = 60\n')
    settings = fallback("--config", str(toml), *KAFKA, "--fallback_after", "30", environ={
        "ILAGENT_FALLBACK_WEBHOOK": HOOK, "ILAGENT_FALLBACK_REPEAT": "600"})
    assert settings.channels == ("webhook", "mail")
    assert (settings.after, settings.repeat, settings.webhook) == (30.0, 600.0, HOOK)
    assert settings.mail_to == ("ops@plant3.example", "shift@plant3.example")
    from_env = fallback(*KAFKA, environ={"ILAGENT_FALLBACK_SMTP": "relay",
                                         "ILAGENT_FALLBACK_MAIL_TO": "a@b.example, c@d.example"})
    assert from_env.mail_to == ("a@b.example", "c@d.example")


@pytest.mark.parametrize(("argv", "message"), [
    (["--fallback_mail_to", "ops@plant3.example"],
     "--fallback_mail_to needs --fallback_smtp: the mail relay to send through (host:port)"),
    (["--fallback_mail_from", "a@b.example", "--fallback_webhook", HOOK],
     "--fallback_mail_from needs --fallback_smtp"),
    (["--fallback_smtp", "relay:25"], "--fallback_smtp needs --fallback_mail_to"),
    (["--fallback_smtp", "relay:0", "--fallback_mail_to", "a@b.example"],
     "--fallback_smtp 'relay:0' is not HOST or HOST:PORT"),
    (["--fallback_smtp", "relay", "--fallback_mail_to", "ops"],
     "--fallback_mail_to 'ops' is not a mail address"),
    (["--fallback_smtp", "relay", "--fallback_mail_to", "a@b.example\nBcc: x@y.example"],
     "--fallback_mail_to 'a@b.example\\nBcc: x@y.example' is not a mail address"),
    (["--fallback_mqtt_topic", "horn"],
     "--fallback_mqtt_topic needs a broker: MQTT mode (-m/--mqtt_host) or --fallback_mqtt_host"),
    (["--fallback_mqtt_host", "plc.local"], "--fallback_mqtt_host needs --fallback_mqtt_topic"),
    (["--fallback_mqtt_topic", "horn/#", "--fallback_mqtt_host", "plc"],
     "--fallback_mqtt_topic 'horn/#' cannot be published to"),
    (["--fallback_mqtt_topic", "horn", "--fallback_mqtt_port", "1884"],
     "--fallback_mqtt_port needs --fallback_mqtt_host"),
    (["--fallback_mqtt_topic", "horn", "--fallback_mqtt_host", "plc",
      "--fallback_mqtt_username", "u"],
     "--fallback_mqtt_username and --fallback_mqtt_password go together"),
    (["--fallback_mqtt_topic", "horn", "--fallback_mqtt_host", "plc", "--fallback_mqtt_ca",
      "/etc/ca.pem"], "--fallback_mqtt_ca needs --fallback_mqtt_tls"),
    (["--fallback_webhook", "ftp://hooks.example/s3cret-hook-token"],
     "--fallback_webhook must be an http:// or https:// URL$"),
    (["--fallback_webhook", "hooks.example/s3cret"],
     "--fallback_webhook must be an http:// or https:// URL$"),
    (["--fallback_after", "30"], "--fallback_after needs a fallback channel"),
])
def test_refused(argv: list[str], message: str) -> None:
    """What cannot work is one line naming the option (a webhook URL is never repeated)."""
    with pytest.raises(ConfigError) as refused:
        config(*KAFKA, *argv)
    assert refused.match("^" + message.replace("(", r"\(").replace(")", r"\)").replace(
        "+", r"\+").replace(".", r"\.").replace("#", r"\#").replace("\\n", r"\\n"))


def test_timing_from_the_environment_without_a_channel_is_just_unused() -> None:
    """As for every option that cannot take effect: refused as a flag, unused from outside."""
    assert config(*KAFKA, environ={"ILAGENT_FALLBACK_AFTER": "30"}).fallback is None


@pytest.mark.parametrize(("argv", "environ", "line"), [
    (["--fallback_after", "0.5", "--fallback_webhook", HOOK], {},
     "ilagent daemon: error: argument --fallback_after/--fallback-after: '0.5' must be at least "
     "1 second"),
    (["--fallback_webhook", HOOK], {"ILAGENT_FALLBACK_REPEAT": "0"},
     "ilagent daemon: error: ILAGENT_FALLBACK_REPEAT: '0' must be at least 1 second"),
    (["--fallback_mail_to", "ops@plant3.example"], {},
     "ilagent daemon: error: --fallback_mail_to needs --fallback_smtp"),
])
def test_the_daemon_exits_2_with_one_line(argv: list[str], environ: dict[str, str],
                                          line: str, tmp_path: Path) -> None:
    """The real command: exit 2 within seconds, one line on stderr, the webhook not in it."""
    done = subprocess.run([sys.executable, "-m", "ilagent", "daemon", *KAFKA, *argv],
                          capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
                          env={**{k: v for k, v in os.environ.items()
                                  if not k.startswith(("ILAGENT_", "ILERT_"))}, **environ})
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith(line) and "s3cret-hook-token" not in done.stderr
