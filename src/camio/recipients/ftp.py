"""FTP recipients: upload snapshots (or the notification text) into a templated directory.

Every file is written under a temporary name (``<final>.part``) and renamed when complete, so a
watcher on the server never picks up half a file. The final name is ``<key>-<name>``: a retry
of the same delivery writes the same file again (overwriting it), never a second copy.

The directory template is rendered by the shared :mod:`camio.recipients.templates` with the
fields of :data:`TEMPLATE_ROOTS`; substituted values cannot add path separators or ``..``. The
date and time are those of the triggering event (UTC), so a retry after midnight still lands in
the directory of the event. These helpers are shared with :mod:`camio.recipients.sftp`.

aioftp only does passive mode, which is what works through NAT and firewalls; ``passive`` is
there so the configuration says so explicitly, and ``false`` is rejected. Explicit FTPS
(``AUTH TLS``, control and data channels protected) is available with ``tls: true``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import ssl
import string
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator

from camio.core.recipients import RecipientSpec
from camio.lazy import LazyModule
from camio.recipients.base import Delivery, DeliveryError, Sender, register_recipient

if TYPE_CHECKING:
    import aioftp
else:
    aioftp = LazyModule("aioftp")
from camio.recipients.templates import check, context_for, render

# --- shared with sftp: templates, names ------------------------------------------------------

TEMPLATE_ROOTS = frozenset(
    {"date", "time", "year", "month", "day", "hour", "key", "recipient", "event", "device", "rule"}
)
"""What a directory template may use: the fields of the shared templates
(:func:`camio.recipients.templates.context_for`: ``{key}``, ``{recipient}``, ``{event.topic}``,
``{event.source}``, ``{device.name}``, ``{rule.name}``...) plus the event's UTC date and time:
``{date}`` (2026-11-22), ``{time}`` (142501), ``{year}`` ``{month}`` ``{day}`` ``{hour}``.
Every substituted value is made a single safe path component (see :func:`safe_component`)."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._+@=-]")


def safe_component(value: str) -> str:
    """A string usable as one path component: no separators, no ``..``, not empty."""
    cleaned = re.sub(r"\.{2,}", ".", _UNSAFE.sub("_", value)).strip("._") or "_"
    return cleaned[:120]


def check_directory_template(value: str) -> str:
    """Validate a directory template: the shared template rules, known fields only, no
    ``..`` and no backslash."""
    if "\\" in value or "\x00" in value:
        raise ValueError("a directory template cannot contain a backslash or a NUL")
    if any(part == ".." for part in value.split("/")):
        raise ValueError("a directory template cannot contain '..'")
    check(value)
    for _, name, _, _ in string.Formatter().parse(value):
        if name is not None and name.split(".")[0] not in TEMPLATE_ROOTS:
            known = ", ".join("{" + f + "}" for f in sorted(TEMPLATE_ROOTS))
            raise ValueError(f"unknown field {{{name}}} in directory template (known: {known})")
    return value


DirectoryTemplate = Annotated[str, Field(max_length=255), AfterValidator(check_directory_template)]


def _event_time(delivery: Delivery) -> dt.datetime:
    raw = delivery.event.get("time")
    if isinstance(raw, str):
        try:
            when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return when.astimezone(dt.UTC) if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return dt.datetime.now(dt.UTC)


def template_context(delivery: Delivery) -> dict[str, Any]:
    """The shared template context plus the event's UTC date and time (the event's, not the
    attempt's: a retry after midnight goes to the same directory)."""
    when = _event_time(delivery)
    return {
        **context_for(delivery),
        "date": when.strftime("%Y-%m-%d"),
        "time": when.strftime("%H%M%S"),
        "year": when.strftime("%Y"),
        "month": when.strftime("%m"),
        "day": when.strftime("%d"),
        "hour": when.strftime("%H"),
    }


def _quote(value: str) -> str:
    return safe_component(value) if value else ""


def render_directory(template: str, delivery: Delivery) -> str:
    """The directory a delivery goes to: the template rendered and normalised (``""`` for
    the login directory; a leading ``/`` kept). Empty components are dropped."""
    rendered = render(template, template_context(delivery), quote=_quote)
    parts = [p for p in rendered.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):  # pragma: no cover - values are sanitised
        raise DeliveryError(f"directory {rendered!r} leaves the base directory", permanent=True)
    joined = "/".join(parts)
    return "/" + joined if rendered.startswith("/") else joined


def upload_items(delivery: Delivery) -> list[tuple[str, bytes]]:
    """The files of a delivery: each attachment, or the text as ``<key>-message.txt`` (as the
    share recipient), with final names ``<key>-<name>`` (unique within the delivery)."""
    key = safe_component(delivery.key)
    if delivery.attachments:
        raw = [(a.name, a.data) for a in delivery.attachments]
    else:
        text = f"{delivery.subject}\n\n{delivery.body}\n"
        raw = [("message.txt", text.encode("utf-8"))]
    items: list[tuple[str, bytes]] = []
    seen: set[str] = set()
    for index, (name, data) in enumerate(raw, start=1):
        final = f"{key}-{safe_component(name)}"
        if final in seen:
            stem, dot, ext = final.rpartition(".")
            final = f"{stem}-{index}.{ext}" if dot and stem else f"{final}-{index}"
        seen.add(final)
        items.append((final, data))
    return items


def temporary_name(final: str) -> str:
    return f"{final}.part"


def join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


def os_error_text(exc: OSError) -> str:
    """``Connection refused`` rather than ``[Errno 111] Connect call failed ('h', 25)``."""
    if isinstance(exc, socket.gaierror) or not exc.errno or exc.errno < 0:
        return exc.strerror or str(exc)
    return os.strerror(exc.errno)


def tls_context(verify: bool, ca_file: str | None, where: str) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise DeliveryError(
            f"{where}: cannot load the CA file {ca_file}: {exc}", permanent=True
        ) from exc
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


# --- FTP ------------------------------------------------------------------------------------


class FtpRecipient(RecipientSpec):
    """An FTP server, the login and the directory uploads go to."""

    kind: Literal["ftp"] = "ftp"
    host: Annotated[str, Field(min_length=1, max_length=253)]
    port: Annotated[int, Field(ge=1, le=65535)] = 21
    username: str = "anonymous"
    password: str = ""
    passive: bool = True
    directory: DirectoryTemplate = ""
    tls: bool = False  # explicit FTPS (AUTH TLS) on the control and data connections
    verify_certificate: bool = True
    ca_file: str | None = None
    timeout: Annotated[float, Field(gt=0, le=300)] = 30.0

    @field_validator("passive")
    @classmethod
    def _passive_only(cls, value: bool) -> bool:
        if not value:
            raise ValueError("active-mode FTP is not supported; use passive mode")
        return value


def _where(spec: FtpRecipient) -> str:
    return f"FTP server {spec.host}:{spec.port}"


def _reply(exc: aioftp.StatusCodeError) -> str:
    code = str(exc.received_codes[-1]) if exc.received_codes else "?"
    info = exc.info if isinstance(exc.info, str) else " ".join(exc.info)
    # aioftp keeps the whole reply line ("550 Permission denied."): drop the repeated code.
    text = " ".join(info.split())
    if text.startswith(code):
        text = text[len(code) :].lstrip(" -")
    return f"{code} {text}".strip()


def _is_permanent(exc: aioftp.StatusCodeError) -> bool:
    return bool(exc.received_codes) and str(exc.received_codes[-1]).startswith("5")


class _Session:
    """One FTP connection; every step names what it was doing when it fails."""

    def __init__(self, spec: FtpRecipient) -> None:
        self.spec = spec
        self.client = aioftp.Client(
            socket_timeout=spec.timeout,
            connection_timeout=spec.timeout,
            passive_commands=("epsv", "pasv"),
        )
        self.step = f"cannot connect to {_where(spec)}"
        self.logging_in = False

    def error(self, exc: BaseException) -> DeliveryError:
        spec = self.spec
        if isinstance(exc, DeliveryError):
            return exc
        if isinstance(exc, aioftp.StatusCodeError):
            if self.logging_in:
                text = f"{self.step} ({_reply(exc)})"
            else:
                text = f"{self.step}: {_reply(exc)}"
            return DeliveryError(text, permanent=_is_permanent(exc))
        if isinstance(exc, ssl.SSLCertVerificationError):
            return DeliveryError(
                f"{_where(spec)}: the TLS certificate could not be verified "
                f"({exc.verify_message}); configure a CA file or disable certificate checking",
                permanent=True,
            )
        if isinstance(exc, ssl.SSLError):
            return DeliveryError(f"{self.step}: TLS failed ({exc})")
        if isinstance(exc, TimeoutError):
            return DeliveryError(f"{self.step}: no answer within {spec.timeout:g} s")
        if isinstance(exc, OSError):
            return DeliveryError(f"{self.step}: {os_error_text(exc)}")
        return DeliveryError(f"{self.step}: {exc}")

    async def open(self) -> None:
        spec = self.spec
        await self.client.connect(spec.host, spec.port)
        if spec.tls:
            self.step = f"{_where(spec)}: cannot switch to TLS (AUTH TLS)"
            context = tls_context(spec.verify_certificate, spec.ca_file, _where(spec))
            await self.client.upgrade_to_tls(context)
        self.step = f"{_where(spec)} refused the login for {spec.username!r}"
        self.logging_in = True
        await self.client.login(spec.username, spec.password)
        self.logging_in = False

    async def make_directories(self, directory: str) -> None:
        if not directory:
            return
        self.step = f"FTP: cannot check directory {directory}"
        if await self.client.exists(directory):
            return
        path = PurePosixPath(directory)
        for prefix in [*reversed(path.parents), path]:
            if str(prefix) in ("/", "."):
                continue
            self.step = f"FTP: cannot create directory {prefix}"
            try:
                await self.client.command(f"MKD {prefix}", "257")
            except aioftp.StatusCodeError:
                # Usually "already exists"; anything else is reported as the MKD error.
                if not await self._is_dir(prefix):
                    raise

    async def _is_dir(self, path: PurePosixPath) -> bool:
        try:
            return await self.client.is_dir(path)
        except aioftp.StatusCodeError:
            return False

    async def put(self, directory: str, final: str, data: bytes) -> None:
        temp = join(directory, temporary_name(final))
        target = join(directory, final)
        self.step = f"FTP: cannot upload {temp}"
        async with self.client.upload_stream(temp) as stream:
            await stream.write(data)
        self.step = f"FTP: cannot rename {temp} to {target}"
        try:
            await self.client.rename(temp, target)
        except aioftp.StatusCodeError:
            # Some servers (Windows) refuse to rename over an existing file: replace it.
            if not await self.client.exists(target):
                raise
            await self.client.remove_file(target)
            await self.client.rename(temp, target)

    async def close(self) -> None:
        try:
            await self.client.quit()
        except (aioftp.AIOFTPException, OSError, TimeoutError):
            pass
        finally:
            self.client.close()


def _handled() -> tuple[type[BaseException], ...]:
    """The errors a delivery attempt turns into a DeliveryError (the client library's own
    exceptions are looked up here, so the library loads only when it is used)."""
    return (aioftp.AIOFTPException, ssl.SSLError, OSError, TimeoutError, DeliveryError)


class FtpSender(Sender[FtpRecipient]):
    async def send(self, spec: FtpRecipient, delivery: Delivery) -> None:
        directory = render_directory(spec.directory, delivery)
        session = _Session(spec)
        try:
            await session.open()
            await session.make_directories(directory)
            for final, data in upload_items(delivery):
                await session.put(directory, final, data)
        except _handled() as exc:
            raise session.error(exc) from exc
        finally:
            await session.close()

    async def test(self, spec: FtpRecipient) -> str:
        """Connect and log in, and check the fixed part of the directory (the part before the
        first template field) exists; nothing is written."""
        session = _Session(spec)
        fixed = (
            spec.directory.split("{", 1)[0].rsplit("/", 1)[0]
            if "{" in spec.directory
            else spec.directory
        )
        fixed = fixed.rstrip("/") or ("/" if spec.directory.startswith("/") else "")
        try:
            await session.open()
            if fixed:
                session.step = f"FTP: cannot check directory {fixed}"
                if not await session.client.exists(fixed):
                    return (
                        f"logged in to {_where(spec)} as {spec.username!r}; "
                        f"directory {fixed} does not exist yet and will be created"
                    )
        except _handled() as exc:
            raise session.error(exc) from exc
        finally:
            await session.close()
        return f"logged in to {_where(spec)} as {spec.username!r}"


register_recipient(FtpRecipient, FtpSender())
