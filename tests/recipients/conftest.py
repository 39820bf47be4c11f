"""Real servers on 127.0.0.1 for the recipient tests: aiosmtpd, pyftpdlib, asyncssh.

Each fixture starts its server, yields what a test needs to configure a recipient, and stops it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyftpdlib.authorizers import DummyAuthorizer  # type: ignore[import-untyped]
from pyftpdlib.handlers import FTPHandler  # type: ignore[import-untyped]
from pyftpdlib.servers import FTPServer  # type: ignore[import-untyped]
from recipient_helpers import FtpSite, SelfSigned, SftpSite, SmtpSink, free_port

# --- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> SelfSigned:
    """A self-signed certificate for 127.0.0.1 / localhost (it is its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "camio test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return SelfSigned(cert_path, key_path)


# --- SMTP -----------------------------------------------------------------------------------


def _authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"cam",
        b"secret",
    )
    # handled=False makes aiosmtpd answer 535 itself (handled=True would send nothing).
    return AuthResult(success=ok, handled=False)


def _smtp_server(
    *, starttls: SelfSigned | None = None, implicit_tls: SelfSigned | None = None
) -> Iterator[SmtpSink]:
    sink = SmtpSink(port=free_port())
    kwargs: dict[str, Any] = {}
    if starttls is not None:
        kwargs["tls_context"] = starttls.server_context()
        kwargs["require_starttls"] = True
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=sink.port,
        authenticator=_authenticator,
        auth_require_tls=False,
        ssl_context=implicit_tls.server_context() if implicit_tls else None,
        server_hostname="localhost",
        **kwargs,
    )
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    """Plain SMTP with AUTH (user ``cam``, password ``secret``)."""
    yield from _smtp_server()


@pytest.fixture
def smtp_starttls_server(self_signed: SelfSigned) -> Iterator[SmtpSink]:
    """SMTP that requires STARTTLS, with the self-signed certificate."""
    yield from _smtp_server(starttls=self_signed)


@pytest.fixture
def smtp_tls_server(self_signed: SelfSigned) -> Iterator[SmtpSink]:
    """SMTP over implicit TLS (SMTPS), with the self-signed certificate."""
    yield from _smtp_server(implicit_tls=self_signed)


# --- FTP ------------------------------------------------------------------------------------


def _ftp_server(root: Path, base: type[Any], **attributes: Any) -> Iterator[FtpSite]:
    root.mkdir()
    authorizer = DummyAuthorizer()
    authorizer.add_user("cam", "secret", str(root), perm="elradfmwMT")
    authorizer.add_user("viewer", "pw", str(root), perm="elr")
    # pyftpdlib waits 3 s before answering a bad login by default.
    attributes.update(authorizer=authorizer, auth_failed_timeout=0)
    handler = type("Handler", (base,), attributes)
    server = FTPServer(("127.0.0.1", 0), handler)
    port = server.socket.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            server.serve_forever(timeout=0.02, blocking=False)
        server.close_all()

    thread = threading.Thread(target=serve, name="pyftpdlib", daemon=True)
    thread.start()
    try:
        yield FtpSite(port, root)
    finally:
        stop.set()
        thread.join(5)


@pytest.fixture
def ftp_server(tmp_path: Path) -> Iterator[FtpSite]:
    """pyftpdlib in a thread: ``cam``/``secret`` may do anything in the root, ``viewer``/``pw``
    may only list and read."""
    yield from _ftp_server(tmp_path / "ftp", FTPHandler)


@pytest.fixture
def ftps_server(tmp_path: Path, self_signed: SelfSigned) -> Iterator[FtpSite]:
    """The same with explicit FTPS required on control and data (needs pyOpenSSL)."""
    pytest.importorskip("OpenSSL", reason="pyftpdlib needs pyOpenSSL for FTPS")
    from pyftpdlib.handlers import TLS_FTPHandler

    yield from _ftp_server(
        tmp_path / "ftps",
        TLS_FTPHandler,
        certfile=str(self_signed.cert),
        keyfile=str(self_signed.key),
        tls_control_required=True,
        tls_data_required=True,
    )


# --- SFTP -----------------------------------------------------------------------------------


class _PasswordServer(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return (username, password) == ("cam", "secret")


@pytest.fixture(scope="session")
def ssh_keys() -> tuple[asyncssh.SSHKey, asyncssh.SSHKey]:
    """(server host key, client key), generated once."""
    return asyncssh.generate_private_key("ssh-ed25519"), asyncssh.generate_private_key(
        "ssh-ed25519"
    )


@pytest.fixture
async def sftp_server(
    tmp_path: Path, ssh_keys: tuple[asyncssh.SSHKey, asyncssh.SSHKey]
) -> AsyncIterator[SftpSite]:
    """An asyncssh server with SFTP rooted in a temporary directory; user ``cam`` logs in with
    password ``secret`` or the client key."""
    host_key, client_key = ssh_keys
    root = tmp_path / "sftp"
    root.mkdir()
    authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())

    def sftp_factory(chan: asyncssh.SSHServerChannel[bytes]) -> asyncssh.SFTPServer:
        return asyncssh.SFTPServer(chan, chroot=str(root).encode())

    server = await asyncssh.listen(
        "127.0.0.1",
        0,
        server_host_keys=[host_key],
        server_factory=_PasswordServer,
        authorized_client_keys=authorized,
        sftp_factory=sftp_factory,
    )
    try:
        yield SftpSite(
            port=server.get_port(),
            root=root,
            host_key=host_key.export_public_key().decode().strip(),
            client_key=client_key.export_private_key().decode(),
        )
    finally:
        server.close()
        await server.wait_closed()
