"""Test certificates made with the `openssl` command: a CA, a server certificate for 127.0.0.1 and
localhost, client certificates from that CA (one named prometheus.test, one intruder.test), and
one from a foreign CA."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


def openssl_missing() -> str | None:
    return None if shutil.which("openssl") else "needs the openssl command (Debian package openssl)"


@dataclass(frozen=True)
class Pki:
    ca: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path        # signed by ``ca``; SAN DNS:prometheus.test
    client_key: Path
    foreign_client_cert: Path  # signed by another CA; SAN DNS:prometheus.test too
    foreign_client_key: Path
    intruder_cert: Path        # signed by ``ca``, but SAN DNS:intruder.test
    intruder_key: Path

    def renew_server(self, serial: int) -> None:
        """A new server certificate (and key) in place, told apart by its serial number."""
        issue(self.ca.parent, "server", (self.ca, self.ca_key), SERVER_SAN, "serverAuth", serial)


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed: {result.stderr}")


def make_ca(d: Path, name: str) -> tuple[Path, Path]:
    _openssl("req", "-x509", *EC, "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
             "-subj", f"/CN={name}", cwd=d)
    return d / f"{name}.pem", d / f"{name}.key"


def issue(d: Path, name: str, ca: tuple[Path, Path], san: str, usage: str, serial: int = 1) -> tuple[Path, Path]:
    """A leaf certificate ``name``.pem/.key signed by ``ca`` with subjectAltName ``san``."""
    (d / f"{name}.ext").write_text(f"subjectAltName={san}\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n")
    _openssl("req", *EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-set_serial", str(serial),
             "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    return d / f"{name}.pem", d / f"{name}.key"


SERVER_SAN = "IP:127.0.0.1,DNS:localhost"


def make_pki(d: Path) -> Pki:
    d.mkdir(parents=True, exist_ok=True)
    ca = make_ca(d, "ca")
    foreign = make_ca(d, "foreign-ca")
    server = issue(d, "server", ca, SERVER_SAN, "serverAuth")
    client = issue(d, "client", ca, "DNS:prometheus.test", "clientAuth")
    stranger = issue(d, "foreign-client", foreign, "DNS:prometheus.test", "clientAuth")
    intruder = issue(d, "intruder", ca, "DNS:intruder.test", "clientAuth")
    return Pki(*ca, *server, *client, *stranger, *intruder)
