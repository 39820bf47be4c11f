"""The device's HTTPS certificate: generated on first start, replaceable by the user.

Generation and inspection use the ``cryptography`` package in a short-lived child process
(``python -m camio.store.certs``): the daemon itself only needs the ``ssl`` module to serve
the files, and stays 6.5 MB smaller than it would by importing ``cryptography``.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from camio.store.atomic import atomic_write_bytes

CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"
INFO_FILE = "cert.json"


class CertificateError(ValueError):
    """A certificate or key that cannot be used; the message says why."""


def tls_dir(data_dir: Path) -> Path:
    return data_dir / "tls"


def _run_helper(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "camio.store.certs", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise CertificateError(proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed")
    info: dict[str, Any] = json.loads(proc.stdout)
    return info


def ensure_certificate(data_dir: Path, hostnames: list[str]) -> tuple[Path, Path]:
    """The certificate and key paths, generating a self-signed pair on first use."""
    folder = tls_dir(data_dir)
    cert, key = folder / CERT_FILE, folder / KEY_FILE
    if cert.exists() and key.exists():
        return cert, key
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = _run_helper("generate", str(folder), *hostnames)
    atomic_write_bytes(folder / INFO_FILE, json.dumps(info).encode(), mode=0o600)
    return cert, key


def certificate_info(data_dir: Path) -> dict[str, Any]:
    """Subject, validity and whether it is self-signed (as recorded when it was installed)."""
    try:
        info: dict[str, Any] = json.loads((tls_dir(data_dir) / INFO_FILE).read_text())
        return info
    except (OSError, ValueError):
        return {}


def install_certificate(data_dir: Path, cert_pem: str, key_pem: str) -> dict[str, Any]:
    """Check that the pair works for a TLS server, then replace the device's certificate."""
    if len(cert_pem) > 256 * 1024 or len(key_pem) > 64 * 1024:
        raise CertificateError("certificate or key too large")
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp) / CERT_FILE, Path(tmp) / KEY_FILE
        cert.write_text(cert_pem)
        key.write_text(key_pem)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as exc:
            raise CertificateError(
                f"the certificate and key do not form a usable pair: {exc}"
            ) from None
        info = _run_helper("inspect", str(cert))
    folder = tls_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_bytes(folder / KEY_FILE, key_pem.encode(), mode=0o600)
    atomic_write_bytes(folder / CERT_FILE, cert_pem.encode(), mode=0o644)
    atomic_write_bytes(folder / INFO_FILE, json.dumps(info).encode(), mode=0o600)
    return info


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


# -- the child process ---------------------------------------------------------------------


def _describe(certificate: Any) -> dict[str, Any]:
    from cryptography.hazmat.primitives import hashes

    subject = certificate.subject.rfc4514_string()
    issuer = certificate.issuer.rfc4514_string()
    return {
        "subject": subject,
        "issuer": issuer,
        "not_before": certificate.not_valid_before_utc.isoformat(),
        "not_after": certificate.not_valid_after_utc.isoformat(),
        "self_signed": subject == issuer,
        "serial": format(certificate.serial_number, "x"),
        "sha256": certificate.fingerprint(hashes.SHA256()).hex(),
    }


def _generate(folder: Path, hostnames: list[str]) -> dict[str, Any]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    common_name = hostnames[0] if hostnames else "camio"
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    alt: list[x509.GeneralName] = []
    for host in hostnames or ["localhost"]:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    atomic_write_bytes(folder / KEY_FILE, key_pem, mode=0o600)
    atomic_write_bytes(
        folder / CERT_FILE, certificate.public_bytes(serialization.Encoding.PEM), mode=0o644
    )
    return _describe(certificate)


def _inspect(path: Path) -> dict[str, Any]:
    from cryptography import x509

    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError as exc:
        raise SystemExit(f"not a PEM certificate: {exc}") from None
    return _describe(certificate)


def main(argv: list[str]) -> int:
    command, *rest = argv
    if command == "generate":
        info = _generate(Path(rest[0]), rest[1:])
    elif command == "inspect":
        info = _inspect(Path(rest[0]))
    else:
        raise SystemExit(f"unknown command {command!r}")
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
