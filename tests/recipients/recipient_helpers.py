"""Helpers shared by the recipient tests and their fixtures (conftest.py)."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from camio.recipients.base import Attachment, Delivery

JPEG = (
    bytes.fromhex("ffd8ffe000104a46494600010100000100010000") + bytes(range(256)) * 40 + b"\xff\xd9"
)


def free_port() -> int:
    """A TCP port nothing listens on (for 'server down' and for servers that need a fixed
    port up front)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_delivery(key: str = "evt-42-cam", *, attachments: bool = True) -> Delivery:
    return Delivery(
        key=key,
        recipient_id="r1",
        subject="Alarm: door 1 opened",
        body="Input door-1 went active at 2026-11-22T01:02:03Z.",
        event={"id": 42, "topic": "input/door-1", "time": "2026-11-22T01:02:03.456Z"},
        attachments=(Attachment("snapshot.jpg", "image/jpeg", JPEG),) if attachments else (),
    )


@dataclass(frozen=True)
class SelfSigned:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


@dataclass
class SmtpSink:
    """What the aiosmtpd handler received; ``data_reply`` / ``refuse`` inject failures."""

    port: int = 0
    messages: list[Envelope] = field(default_factory=list)
    data_reply: str = "250 OK"
    refuse: set[str] = field(default_factory=set)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply.startswith("250"):
            self.messages.append(envelope)
        return self.data_reply


@dataclass(frozen=True)
class FtpSite:
    port: int
    root: Path


@dataclass(frozen=True)
class SftpSite:
    port: int
    root: Path
    host_key: str  # the server's public key line
    client_key: str  # a private key (OpenSSH PEM) the server accepts for user "cam"
