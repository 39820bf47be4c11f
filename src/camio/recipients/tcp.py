"""TCP recipient: one line of text per notification (alarm receivers, home-made listeners).

The default line starts with the delivery key, so a receiver can drop a line it has already
seen: a retry after a lost connection repeats the same key. The line never contains a line
break of its own (they become spaces), so one notification is always one line.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Annotated, Literal

from pydantic import Field, field_validator

from camio.core.recipients import RecipientSpec
from camio.recipients.base import Delivery, DeliveryError, Sender, register_recipient
from camio.recipients.templates import check, context_for, render


class TcpRecipient(RecipientSpec):
    kind: Literal["tcp"] = "tcp"
    host: Annotated[str, Field(min_length=1, max_length=253)]
    port: Annotated[int, Field(ge=1, le=65535)]
    line: Annotated[str, Field(min_length=1, max_length=2048)] = (
        "{key} {event.topic} {event.source} {subject}"
    )
    tls: bool = False
    verify_tls: bool = True
    ca_file: Annotated[str, Field(max_length=1024)] | None = None
    timeout_s: Annotated[float, Field(ge=0.5, le=120)] = 10.0

    @field_validator("line")
    @classmethod
    def _line(cls, value: str) -> str:
        return check(value)


def _ssl(spec: TcpRecipient) -> ssl.SSLContext | None:
    if not spec.tls:
        return None
    try:
        ctx = ssl.create_default_context(cafile=spec.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise DeliveryError(f"cannot load CA file {spec.ca_file!r}: {exc}", permanent=True) from exc
    if not spec.verify_tls:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class TcpSender(Sender[TcpRecipient]):
    async def send(self, spec: TcpRecipient, delivery: Delivery) -> None:
        text = " ".join(render(spec.line, context_for(delivery)).splitlines())
        await self._write(spec, (text + "\n").encode())

    async def test(self, spec: TcpRecipient) -> str:
        await self._write(spec, b"")
        return f"connected to {spec.host}:{spec.port}" + (" over TLS" if spec.tls else "")

    async def _write(self, spec: TcpRecipient, data: bytes) -> None:
        where = f"{spec.host}:{spec.port}"
        try:
            async with asyncio.timeout(spec.timeout_s):
                reader, writer = await asyncio.open_connection(spec.host, spec.port, ssl=_ssl(spec))
                try:
                    if data:
                        writer.write(data)
                        await writer.drain()
                    if writer.can_write_eof():
                        writer.write_eof()
                finally:
                    writer.close()
                    await writer.wait_closed()
                del reader
        except ssl.SSLCertVerificationError as exc:
            message = f"certificate of {where} not trusted: {exc.verify_message}"
            raise DeliveryError(message) from exc
        except TimeoutError as exc:
            raise DeliveryError(f"no connection to {where} within {spec.timeout_s} s") from exc
        except OSError as exc:
            raise DeliveryError(f"cannot send to {where}: {exc.strerror or exc}") from exc


register_recipient(TcpRecipient, TcpSender())
