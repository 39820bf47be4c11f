"""E-mail recipients: SMTP with STARTTLS or implicit TLS, optional login, attachments.

The subject and body are the ones the action rendered into the :class:`Delivery`; this module
only wraps them in a MIME message. The Message-ID is derived from the delivery key
(``<key@camio>``), and the key is also sent as ``X-Camio-Delivery``, so a message that is sent
again after a lost acknowledgement is recognisable as the same notification.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, Field

from camio.core.recipients import RecipientSpec
from camio.lazy import LazyModule
from camio.recipients.base import Delivery, DeliveryError, Sender, register_recipient

if TYPE_CHECKING:
    import aiosmtplib
else:
    aiosmtplib = LazyModule("aiosmtplib")

_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")


def _address(value: str) -> str:
    value = value.strip()
    if not _ADDRESS.match(value):
        raise ValueError(f"{value!r} is not an e-mail address (user@example.com)")
    return value


Address = Annotated[str, AfterValidator(_address)]


class EmailRecipient(RecipientSpec):
    """An SMTP server and the addresses a notification goes to."""

    kind: Literal["email"] = "email"
    host: Annotated[str, Field(min_length=1, max_length=253)]
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str | None = None
    password: str | None = None
    from_address: Address
    to: Annotated[list[Address], Field(min_length=1, max_length=50)]
    verify_certificate: bool = True
    ca_file: str | None = None  # a PEM bundle to trust instead of the system's
    timeout: Annotated[float, Field(gt=0, le=300)] = 30.0


def message_id(key: str) -> str:
    """The Message-ID of a delivery: ``<key@camio>``, with characters a msg-id cannot hold
    replaced by ``_``."""
    return f"<{re.sub(r'[^A-Za-z0-9._+-]', '_', key)}@camio>"


def build_message(spec: EmailRecipient, delivery: Delivery) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = spec.from_address
    msg["To"] = ", ".join(spec.to)
    msg["Subject"] = delivery.subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = message_id(delivery.key)
    msg["X-Camio-Delivery"] = delivery.key
    msg.set_content(delivery.body)
    for item in delivery.attachments:
        maintype, _, subtype = item.content_type.partition("/")
        if not maintype or not subtype:
            maintype, subtype = "application", "octet-stream"
        msg.add_attachment(item.data, maintype=maintype, subtype=subtype, filename=item.name)
    return msg


def _where(spec: EmailRecipient) -> str:
    return f"SMTP server {spec.host}:{spec.port}"


def _client(spec: EmailRecipient) -> aiosmtplib.SMTP:
    tls_context: ssl.SSLContext | None = None
    if spec.security != "none":
        try:
            tls_context = ssl.create_default_context(cafile=spec.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise DeliveryError(
                f"{_where(spec)}: cannot load the CA file {spec.ca_file}: {exc}", permanent=True
            ) from exc
        if not spec.verify_certificate:
            tls_context.check_hostname = False
            tls_context.verify_mode = ssl.CERT_NONE
    return aiosmtplib.SMTP(
        hostname=spec.host,
        port=spec.port,
        use_tls=spec.security == "tls",
        start_tls=spec.security == "starttls",
        validate_certs=spec.verify_certificate,
        tls_context=tls_context,
        timeout=spec.timeout,
    )


def _reply(exc: aiosmtplib.SMTPResponseException) -> str:
    text = " ".join(exc.message.split())
    return f"{exc.code} {text}".strip()


def _os_text(exc: OSError) -> str:
    """``Connection refused`` rather than ``[Errno 111] Connect call failed ('h', 25)``."""
    if isinstance(exc, socket.gaierror) or not exc.errno or exc.errno < 0:
        return exc.strerror or str(exc)
    return os.strerror(exc.errno)


def _error(spec: EmailRecipient, exc: BaseException) -> DeliveryError:
    """Translate an aiosmtplib/ssl/OS error into something a user can act on."""
    where = _where(spec)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        permanent = exc.code >= 500
        return DeliveryError(
            f"{where} refused the login for {spec.username!r} ({_reply(exc)})",
            permanent=permanent,
        )
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return DeliveryError(
            f"{where} refused the sender address {exc.sender} ({_reply(exc)})",
            permanent=exc.code >= 500,
        )
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        return DeliveryError(
            f"{where} refused the recipient {exc.recipient} ({_reply(exc)})",
            permanent=exc.code >= 500,
        )
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = "; ".join(f"{r.recipient} ({_reply(r)})" for r in exc.recipients)
        return DeliveryError(
            f"{where} refused every recipient: {refused}",
            permanent=all(r.code >= 500 for r in exc.recipients),
        )
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return DeliveryError(f"{where}: {exc} (check the security setting)", permanent=True)
    if isinstance(exc, ssl.SSLCertVerificationError) or (
        isinstance(exc.__cause__, ssl.SSLCertVerificationError)
    ):
        cause = exc if isinstance(exc, ssl.SSLCertVerificationError) else exc.__cause__
        detail = getattr(cause, "verify_message", None) or str(cause)
        return DeliveryError(
            f"{where}: the TLS certificate could not be verified ({detail}); "
            "configure a CA file or disable certificate checking",
            permanent=True,
        )
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return DeliveryError(f"{where} did not answer within {spec.timeout:g} s")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return DeliveryError(f"{where} answered {_reply(exc)}", permanent=exc.code >= 500)
    if isinstance(exc, aiosmtplib.SMTPConnectError) and isinstance(exc.__cause__, OSError):
        return DeliveryError(f"cannot connect to {where}: {_os_text(exc.__cause__)}")
    if isinstance(exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPServerDisconnected):
        return DeliveryError(f"{where}: {exc}")
    if isinstance(exc, ssl.SSLError):
        return DeliveryError(f"{where}: TLS handshake failed ({exc}); check the security setting")
    if isinstance(exc, OSError):
        return DeliveryError(f"cannot connect to {where}: {_os_text(exc)}")
    return DeliveryError(f"{where}: {exc}")


def _handled() -> tuple[type[BaseException], ...]:
    """The errors a delivery attempt turns into a DeliveryError (the client library's own
    exceptions are looked up here, so the library loads only when it is used)."""
    return (aiosmtplib.SMTPException, ssl.SSLError, OSError, TimeoutError)


class EmailSender(Sender[EmailRecipient]):
    async def send(self, spec: EmailRecipient, delivery: Delivery) -> None:
        msg = build_message(spec, delivery)
        smtp = _client(spec)
        try:
            async with smtp:
                if spec.username:
                    await smtp.login(spec.username, spec.password or "")
                errors, _ = await smtp.send_message(msg)
        except _handled() as exc:
            raise _error(spec, exc) from exc
        if errors:
            # Some recipients accepted the message: sending again would duplicate it for them,
            # so report the refused ones without a retry.
            refused = "; ".join(
                f"{rcpt} ({resp.code} {resp.message})" for rcpt, resp in errors.items()
            )
            raise DeliveryError(f"{_where(spec)} refused {refused}", permanent=True)

    async def test(self, spec: EmailRecipient) -> str:
        smtp = _client(spec)
        try:
            async with smtp:
                if spec.username:
                    await smtp.login(spec.username, spec.password or "")
                # Check the envelope without sending anything: MAIL/RCPT then RSET.
                await smtp.mail(spec.from_address)
                for rcpt in spec.to:
                    await smtp.rcpt(rcpt)
                await smtp.rset()
        except _handled() as exc:
            raise _error(spec, exc) from exc
        login = f" as {spec.username!r}" if spec.username else ""
        return f"connected to {_where(spec)}{login}; {len(spec.to)} recipient(s) accepted"


register_recipient(EmailRecipient, EmailSender())
