"""SFTP recipients: the FTP upload scheme over SSH, with the server's host key checked.

The host key is checked against ``host_key`` (one OpenSSH public key line, as in
``/etc/ssh/ssh_host_ed25519_key.pub``) or ``known_hosts`` (the text of a known_hosts file);
with neither, the recipient refuses to connect unless ``insecure_skip_host_key`` is set. The
client never reads ``~/.ssh`` (config, keys, agent): only what the recipient configures is used.

Directory templates, file names and the temporary-then-rename scheme are those of
:mod:`camio.recipients.ftp`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, TypeVar

from pydantic import Field, field_validator, model_validator

from camio.core.recipients import RecipientSpec
from camio.lazy import LazyModule
from camio.recipients.base import Delivery, DeliveryError, Sender, register_recipient

if TYPE_CHECKING:
    import asyncssh
else:
    asyncssh = LazyModule("asyncssh")
from camio.recipients.ftp import (
    DirectoryTemplate,
    join,
    os_error_text,
    render_directory,
    temporary_name,
    upload_items,
)

T = TypeVar("T")


class SftpRecipient(RecipientSpec):
    """An SSH server, the login, the expected host key and the upload directory."""

    kind: Literal["sftp"] = "sftp"
    host: Annotated[str, Field(min_length=1, max_length=253)]
    port: Annotated[int, Field(ge=1, le=65535)] = 22
    username: Annotated[str, Field(min_length=1)]
    password: str | None = None
    private_key: str | None = None  # PEM/OpenSSH text
    private_key_passphrase: str | None = None
    host_key: str | None = None  # "ssh-ed25519 AAAA..." line
    known_hosts: str | None = None  # known_hosts file text
    insecure_skip_host_key: bool = False
    directory: DirectoryTemplate = ""
    timeout: Annotated[float, Field(gt=0, le=300)] = 30.0

    @field_validator("host_key")
    @classmethod
    def _public_key(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            asyncssh.import_public_key(value.strip())
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise ValueError(f"host_key is not an OpenSSH public key line: {exc}") from None
        return value.strip()

    @field_validator("known_hosts")
    @classmethod
    def _known_hosts(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            asyncssh.import_known_hosts(value)
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise ValueError(f"known_hosts cannot be read: {exc}") from None
        return value

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.private_key:
            try:
                asyncssh.import_private_key(self.private_key, self.private_key_passphrase)
            except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError, ValueError) as exc:
                raise ValueError(f"private_key cannot be read: {exc}") from None
        if self.password is None and not self.private_key:
            raise ValueError("set a password or a private_key")
        return self


def _where(spec: SftpRecipient) -> str:
    return f"SFTP server {spec.host}:{spec.port}"


def _connect_options(spec: SftpRecipient) -> dict[str, Any]:
    known_hosts: Any
    if spec.host_key:
        known_hosts = ([asyncssh.import_public_key(spec.host_key)], [], [])
    elif spec.known_hosts:
        known_hosts = asyncssh.import_known_hosts(spec.known_hosts)
    elif spec.insecure_skip_host_key:
        known_hosts = None
    else:
        raise DeliveryError(
            f"{_where(spec)}: no host key configured; set host_key (or known_hosts) to the "
            "server's public key, or insecure_skip_host_key to connect without checking",
            permanent=True,
        )
    client_keys = (
        [asyncssh.import_private_key(spec.private_key, spec.private_key_passphrase)]
        if spec.private_key
        else None
    )
    return {
        "port": spec.port,
        "username": spec.username,
        "password": spec.password,
        "client_keys": client_keys,
        "known_hosts": known_hosts,
        "agent_path": None,
        "config": [],
        "connect_timeout": spec.timeout,
        "login_timeout": spec.timeout,
    }


def _permanent_sftp() -> tuple[type[BaseException], ...]:
    """SFTP status errors that a retry cannot fix (looked up lazily, see ``LazyModule``)."""
    return (
        asyncssh.SFTPPermissionDenied,
        asyncssh.SFTPNoSuchFile,
        asyncssh.SFTPNoSuchPath,
        asyncssh.SFTPWriteProtect,
        asyncssh.SFTPInvalidFilename,
        asyncssh.SFTPNotADirectory,
        asyncssh.SFTPFileIsADirectory,
        asyncssh.SFTPOpUnsupported,
    )


class _Session:
    def __init__(self, spec: SftpRecipient) -> None:
        self.spec = spec
        self.step = f"cannot connect to {_where(spec)}"

    async def run(self, step: str, awaitable: Awaitable[T]) -> T:
        self.step = step
        async with asyncio.timeout(self.spec.timeout):
            return await awaitable

    def error(self, exc: BaseException) -> DeliveryError:
        spec = self.spec
        if isinstance(exc, DeliveryError):
            return exc
        if isinstance(exc, asyncssh.HostKeyNotVerifiable) or (
            isinstance(exc, asyncssh.KeyExchangeFailed)
            and (spec.host_key or spec.known_hosts)
            and "host key" in str(exc.reason).lower()
        ):
            return DeliveryError(
                f"SFTP host key for {spec.host} does not match the configured one ({exc.reason})",
                permanent=True,
            )
        if isinstance(exc, asyncssh.PermissionDenied):
            how = "private key" if spec.private_key else "password"
            return DeliveryError(
                f"{_where(spec)} refused the login for {spec.username!r} ({how}: {exc.reason})",
                permanent=True,
            )
        context = self.step if self.step.startswith("cannot connect") else f"SFTP: {self.step}"
        if isinstance(exc, asyncssh.SFTPError):
            return DeliveryError(
                f"{context}: {exc.reason}", permanent=isinstance(exc, _permanent_sftp())
            )
        if isinstance(exc, asyncssh.DisconnectError):
            return DeliveryError(f"{context}: {exc.reason}")
        if isinstance(exc, TimeoutError):
            return DeliveryError(f"{context}: no answer within {spec.timeout:g} s")
        if isinstance(exc, OSError):
            return DeliveryError(f"{context}: {os_error_text(exc)}")
        return DeliveryError(f"{context}: {exc}")

    async def make_directories(self, sftp: asyncssh.SFTPClient, directory: str) -> None:
        if not directory or await self.run(
            f"cannot check directory {directory}", sftp.isdir(directory)
        ):
            return
        path = PurePosixPath(directory)
        for prefix in [*reversed(path.parents), path]:
            if str(prefix) in ("/", "."):
                continue
            step = f"cannot create directory {prefix}"
            try:
                await self.run(step, sftp.mkdir(str(prefix)))
            except asyncssh.SFTPError:
                if await self.run(step, sftp.isdir(str(prefix))):
                    continue  # created meanwhile, or the server reports EEXIST oddly
                if await self.run(step, sftp.exists(str(prefix))):
                    raise DeliveryError(
                        f"SFTP: {step}: a file with that name is in the way", permanent=True
                    ) from None
                self.step = step
                raise

    async def put(self, sftp: asyncssh.SFTPClient, directory: str, final: str, data: bytes) -> None:
        temp = join(directory, temporary_name(final))
        target = join(directory, final)
        step = f"cannot upload {temp}"
        self.step = step
        async with asyncio.timeout(self.spec.timeout), sftp.open(temp, "wb") as handle:
            await handle.write(data)
        step = f"cannot rename {temp} to {target}"
        try:
            await self.run(step, sftp.posix_rename(temp, target))
        except asyncssh.SFTPOpUnsupported:
            # No posix-rename extension: plain SFTPv3 rename fails over an existing file.
            if await self.run(step, sftp.exists(target)):
                await self.run(step, sftp.remove(target))
            await self.run(step, sftp.rename(temp, target))


def _handled() -> tuple[type[BaseException], ...]:
    """The errors a delivery attempt turns into a DeliveryError (the client library's own
    exceptions are looked up here, so the library loads only when it is used)."""
    return (asyncssh.Error, OSError, TimeoutError, DeliveryError)


class SftpSender(Sender[SftpRecipient]):
    async def send(self, spec: SftpRecipient, delivery: Delivery) -> None:
        directory = render_directory(spec.directory, delivery)
        session = _Session(spec)
        try:
            options = _connect_options(spec)
            async with asyncssh.connect(spec.host, **options) as conn:
                session.step = "cannot start the SFTP subsystem"
                async with conn.start_sftp_client() as sftp:
                    await session.make_directories(sftp, directory)
                    for final, data in upload_items(delivery):
                        await session.put(sftp, directory, final, data)
        except _handled() as exc:
            raise session.error(exc) from exc

    async def test(self, spec: SftpRecipient) -> str:
        """Connect (host key checked), log in and start SFTP; nothing is written."""
        session = _Session(spec)
        try:
            options = _connect_options(spec)
            async with asyncssh.connect(spec.host, **options) as conn:
                session.step = "cannot start the SFTP subsystem"
                async with conn.start_sftp_client():
                    pass
        except _handled() as exc:
            raise session.error(exc) from exc
        checked = (
            "host key not checked"
            if spec.insecure_skip_host_key and not (spec.host_key or spec.known_hosts)
            else "host key verified"
        )
        return f"logged in to {_where(spec)} as {spec.username!r} ({checked})"


register_recipient(SftpRecipient, SftpSender())
