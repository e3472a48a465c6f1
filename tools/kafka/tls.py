"""A throwaway certificate authority for the test broker, made with openssl at start.

``make_certificates(dir)`` writes, all PEM: ``ca.pem`` (the CA), ``broker.pem`` (the broker's
key and certificate for 127.0.0.1/localhost, as Kafka's PEM key store wants them),
``client.pem`` + ``client.key`` (a client certificate for mutual TLS), and ``other-ca.pem`` (a
CA nobody trusts, for the "unknown CA" test). Nothing of it is ever committed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

DAYS = "2"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def client_certificate(directory: Path, name: str, common_name: str) -> tuple[Path, Path]:
    """Another client certificate of the CA (``name.pem``, ``name.key``) for ``common_name``."""
    _signed(name, f"/CN={common_name}", "extendedKeyUsage=clientAuth\n", directory)
    return directory / f"{name}.pem", directory / f"{name}.key"


def _signed(name: str, subject: str, extensions: str, cwd: Path) -> None:
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
             f"{name}.csr", "-subj", subject, cwd=cwd)
    (cwd / f"{name}.ext").write_text(extensions)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", DAYS, "-extfile", f"{name}.ext",
             cwd=cwd)


def make_certificates(directory: Path) -> Path:
    """Create the CA, broker and client files in ``directory`` (made if need be)."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.pem", "-days", DAYS, "-subj", "/CN=ilagent test CA", cwd=directory)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other-ca.key", "-out",
             "other-ca.pem", "-days", DAYS, "-subj", "/CN=some other CA", cwd=directory)
    _signed("broker", "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
            directory)
    broker = directory / "broker.pem"
    broker.write_text((directory / "broker.key").read_text() + broker.read_text())
    _signed("client", "/CN=ilagent-client", "extendedKeyUsage=clientAuth\n", directory)
    return directory
