"""The options that bound the HTTP intake — --http_allow, --http_token, --http_token_file,
--http_rate_limit, --spool_max_bytes — read once from flags, ILAGENT_* variables and the TOML
file, and refused with one line (exit 2) when they cannot work."""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path

import pytest

from ilagent.cli import build_parser, resolve_options
from ilagent.commands.daemon import daemon_config
from ilagent.config import DEFAULT_HTTP_RATE_LIMIT, DaemonConfig
from ilagent.errors import EXIT_USAGE, ConfigError


def config_of(*argv: str, environ: dict[str, str] | None = None) -> DaemonConfig:
    parser = build_parser()
    args = parser.parse_args(list(argv))
    sources = resolve_options(parser, args, list(argv), environ=environ or {})
    return daemon_config(args, sources)


def http_of(*argv: str, environ: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    config = config_of("daemon", "-p", "8977", *argv, environ=environ)
    assert config.http is not None
    return config.http


def test_allow_takes_addresses_and_networks_repeated_or_comma_separated() -> None:
    """Each value is an address or a CIDR network; values repeat and may hold several."""
    http = http_of("--http_allow", "10.0.0.0/8, 192.0.2.7", "--http_allow", "::1")
    assert http.allow == (ip_network("10.0.0.0/8"), ip_network("192.0.2.7/32"),
                          ip_network("::1/128"))


def test_allow_from_the_environment_and_the_file(tmp_path: Path) -> None:
    """ILAGENT_HTTP_ALLOW splits on commas; the TOML key takes an array."""
    http = http_of(environ={"ILAGENT_HTTP_ALLOW": "0.0.0.0/0,::/0"})
    assert http.allow == (ip_network("0.0.0.0/0"), ip_network("::/0"))
    toml = tmp_path / "c.toml"
    toml.write_text('http_allow = ["192.0.2.0/24", "2001:db8::/32"]\n')
    config = config_of("--config", str(toml), "daemon", "-p", "1")
    assert config.http is not None
    assert config.http.allow == (ip_network("192.0.2.0/24"), ip_network("2001:db8::/32"))


def test_without_http_allow_the_allow_list_is_left_to_the_token() -> None:
    """Not given, the setting is None: the daemon then admits loopback only without a token,
    and every address with one."""
    assert http_of().allow is None
    assert http_of("--http_token", "t0k3n-abcdef").allow is None


@pytest.mark.parametrize(("value", "says"), [
    ("10.0.0.300/8", "'10.0.0.300/8' is not an address or a CIDR network"),
    ("localhost", "'localhost' is not an address or a CIDR network"),
    ("10.0.0.0/33", "'10.0.0.0/33' is not an address or a CIDR network"),
    ("192.168.1.10/24", "'192.168.1.10/24' has host bits set: did you mean 192.168.1.0/24?"),
    (" , ", "no address given"),
])
def test_a_bad_allow_value_is_one_line_and_exit_2(value: str, says: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """On the command line: argparse's one line naming the option and the value, exit 2."""
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["daemon", "-p", "1", "--http_allow", value])
    err = capsys.readouterr().err
    assert exited.value.code == EXIT_USAGE
    assert err.count("\n") == 1 and "--http_allow" in err and says in err, err


def test_a_bad_allow_value_from_the_environment_names_the_variable() -> None:
    """From the environment: a ConfigError (exit 2) naming the variable and the bad part."""
    with pytest.raises(ConfigError) as refused:
        http_of(environ={"ILAGENT_HTTP_ALLOW": "10.0.0.0/8,bogus"})
    assert refused.value.exit_code == EXIT_USAGE
    assert str(refused.value).startswith("ILAGENT_HTTP_ALLOW: 'bogus' is not an address")


def test_several_tokens_from_flags_the_environment_or_the_file(tmp_path: Path) -> None:
    """--http_token repeats; ILAGENT_HTTP_TOKEN holds several comma-separated; TOML an array;
    none of them shows in the settings' repr."""
    assert http_of("--http_token", "first-token1", "--http_token", "second-tok2").tokens == (
        "first-token1", "second-tok2")
    http = http_of(environ={"ILAGENT_HTTP_TOKEN": "env-token-1,env-token-2"})
    assert http.tokens == ("env-token-1", "env-token-2")
    toml = tmp_path / "c.toml"
    toml.write_text('http_token = ["file-token-1", "file-token-2"]\n')
    config = config_of("--config", str(toml), "daemon", "-p", "1")
    assert config.http is not None and config.http.tokens == ("file-token-1", "file-token-2")
    assert "file-token" not in repr(config) and "file-token" not in repr(config.http)


def test_a_token_file_that_is_missing_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """--http_token_file must name a readable file at start; an existing one is kept as a path
    (the daemon reads and polls it)."""
    missing = tmp_path / "no-such-file"
    with pytest.raises(ConfigError) as refused:
        http_of("--http_token_file", str(missing))
    assert refused.value.exit_code == EXIT_USAGE
    assert str(refused.value) == f"--http_token_file {missing}: No such file or directory"
    present = tmp_path / "tokens"
    present.write_text("a-token-of-the-file\n")
    http = http_of("--http_token_file", str(present))
    assert http.token_file == str(present) and http.tokens == ()
    assert http.token_required


def test_rate_limit_defaults_and_may_be_switched_off() -> None:
    """--http_rate_limit has a default per address and 0 switches it off."""
    assert http_of().rate_limit == DEFAULT_HTTP_RATE_LIMIT > 0
    assert http_of("--http_rate_limit", "0").rate_limit == 0
    assert http_of(environ={"ILAGENT_HTTP_RATE_LIMIT": "30"}).rate_limit == 30


@pytest.mark.parametrize(("given", "size"), [
    ("300000", 300_000), ("64K", 64 * 1024), ("512MiB", 512 * 1024**2), ("2g", 2 * 1024**3),
    ("1GiB", 1024**3), ("1 TB", 1024**4),
])
def test_spool_max_bytes_takes_plain_bytes_or_binary_multiples(given: str, size: int) -> None:
    """--spool_max_bytes 300000, 64K, 512MiB, 2g: K, M, G and T are powers of 1024."""
    assert config_of("daemon", "-p", "1", "--spool_max_bytes", given).spool_max_bytes == size


def test_spool_max_bytes_unset_means_the_default_rule(tmp_path: Path) -> None:
    """Not given, the daemon takes 1 GiB or half the free space at start (None here); the
    environment and the file take sizes as the flag does."""
    assert config_of("daemon", "-p", "1").spool_max_bytes is None
    environ = {"ILAGENT_SPOOL_MAX_BYTES": "2G"}
    assert config_of("daemon", "-p", "1", environ=environ).spool_max_bytes == 2 * 1024**3
    toml = tmp_path / "c.toml"
    toml.write_text('spool_max_bytes = "512M"\n')
    assert config_of("--config", str(toml), "daemon", "-p", "1").spool_max_bytes == 512 * 1024**2


@pytest.mark.parametrize("given", ["0", "1.5G", "lots", "-3"])
def test_a_bad_spool_size_is_one_line_and_exit_2(given: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A size that is not a whole number of bytes (with K/M/G/T) or is 0 is refused."""
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["daemon", "-p", "1", f"--spool_max_bytes={given}"])
    err = capsys.readouterr().err
    assert exited.value.code == EXIT_USAGE and err.count("\n") == 1
    assert "--spool_max_bytes" in err, err
