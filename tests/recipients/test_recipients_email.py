"""E-mail recipient against a real aiosmtpd server on loopback."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from typing import Any

import pytest
from pydantic import ValidationError
from recipient_helpers import JPEG, SelfSigned, SmtpSink, free_port, make_delivery

from camio.core.recipients import RECIPIENT_MODELS, recipient_by_kind
from camio.recipients.base import SENDERS, DeliveryError, sender_for
from camio.recipients.email import EmailRecipient, EmailSender

SENDER = EmailSender()


def spec(port: int, **overrides: Any) -> EmailRecipient:
    fields: dict[str, Any] = {
        "id": "mail1",
        "name": "Guard desk",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "username": "cam",
        "password": "secret",
        "from_address": "camera@example.com",
        "to": ["guard@example.com", "boss@example.com"],
        "timeout": 5,
    }
    fields.update(overrides)
    return EmailRecipient.model_validate(fields)


def parse(envelope: Any) -> EmailMessage:
    message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_registered_and_validated() -> None:
    assert RECIPIENT_MODELS["email"] is EmailRecipient
    assert isinstance(SENDERS["email"], EmailSender)
    parsed = recipient_by_kind(
        {
            "kind": "email",
            "id": "m",
            "name": "M",
            "host": "h",
            "from_address": "a@b.c",
            "to": ["d@e.f"],
        }
    )
    assert isinstance(parsed, EmailRecipient)
    assert isinstance(sender_for(parsed), EmailSender)
    with pytest.raises(ValidationError, match="not an e-mail address"):
        spec(25, to=["not-an-address"])
    with pytest.raises(ValidationError):
        spec(25, to=[])


async def test_message_with_attachment_arrives(smtp_server: SmtpSink) -> None:
    await SENDER.send(spec(smtp_server.port), make_delivery("evt-42-mail1"))
    [envelope] = smtp_server.messages
    assert envelope.mail_from == "camera@example.com"
    assert envelope.rcpt_tos == ["guard@example.com", "boss@example.com"]
    message = parse(envelope)
    assert message["Subject"] == "Alarm: door 1 opened"
    assert message["Message-ID"] == "<evt-42-mail1@camio>"
    assert message["X-Camio-Delivery"] == "evt-42-mail1"
    body = message.get_body(("plain",))
    assert body is not None
    assert "door-1 went active" in body.get_content()
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "snapshot.jpg"
    assert attachment.get_content_type() == "image/jpeg"
    assert attachment.get_content() == JPEG  # byte-identical


async def test_retry_keeps_message_id(smtp_server: SmtpSink) -> None:
    delivery = make_delivery("evt/7 cam:1")
    await SENDER.send(spec(smtp_server.port), delivery)
    await SENDER.send(spec(smtp_server.port), delivery)
    ids = {parse(e)["Message-ID"] for e in smtp_server.messages}
    assert ids == {"<evt_7_cam_1@camio>"}


async def test_wrong_password_is_permanent(smtp_server: SmtpSink) -> None:
    with pytest.raises(DeliveryError) as info:
        await SENDER.send(spec(smtp_server.port, password="nope"), make_delivery())
    assert info.value.permanent
    assert str(info.value) == (
        f"SMTP server 127.0.0.1:{smtp_server.port} refused the login for 'cam' "
        "(535 5.7.8 Authentication credentials invalid)"
    )
    assert smtp_server.messages == []


async def test_refused_recipient_and_transient_reply(smtp_server: SmtpSink) -> None:
    smtp_server.refuse = {"guard@example.com", "boss@example.com"}
    with pytest.raises(DeliveryError, match=r"refused every recipient: guard@example\.com") as info:
        await SENDER.send(spec(smtp_server.port), make_delivery())
    assert info.value.permanent

    smtp_server.refuse = set()
    smtp_server.data_reply = "451 4.3.0 Try again later"
    with pytest.raises(DeliveryError, match=r"451 4\.3\.0 Try again later") as info:
        await SENDER.send(spec(smtp_server.port), make_delivery())
    assert not info.value.permanent


async def test_partial_refusal_is_permanent_not_duplicated(smtp_server: SmtpSink) -> None:
    smtp_server.refuse = {"boss@example.com"}
    with pytest.raises(DeliveryError, match=r"refused boss@example\.com") as info:
        await SENDER.send(spec(smtp_server.port), make_delivery())
    assert info.value.permanent
    [envelope] = smtp_server.messages
    assert envelope.rcpt_tos == ["guard@example.com"]


async def test_server_down_is_retryable() -> None:
    port = free_port()
    with pytest.raises(DeliveryError, match=f"127.0.0.1:{port}") as info:
        await SENDER.send(spec(port), make_delivery())
    assert not info.value.permanent


async def test_starttls_self_signed(
    smtp_starttls_server: SmtpSink, self_signed: SelfSigned
) -> None:
    port = smtp_starttls_server.port
    # Certificate checking is on by default: the self-signed certificate is refused.
    with pytest.raises(DeliveryError, match="certificate could not be verified") as info:
        await SENDER.send(spec(port, security="starttls"), make_delivery())
    assert info.value.permanent
    # Trusting it through a CA file, or not checking, works.
    await SENDER.send(
        spec(port, security="starttls", ca_file=str(self_signed.cert)), make_delivery("a")
    )
    await SENDER.send(spec(port, security="starttls", verify_certificate=False), make_delivery("b"))
    assert [parse(e)["Message-ID"] for e in smtp_starttls_server.messages] == [
        "<a@camio>",
        "<b@camio>",
    ]
    # Plain SMTP against a server that requires STARTTLS says what the server wants.
    with pytest.raises(DeliveryError, match="530") as info:
        await SENDER.send(spec(port, security="none"), make_delivery())
    assert info.value.permanent


async def test_implicit_tls(smtp_tls_server: SmtpSink, self_signed: SelfSigned) -> None:
    recipient = spec(smtp_tls_server.port, security="tls", ca_file=str(self_signed.cert))
    await SENDER.send(recipient, make_delivery())
    assert len(smtp_tls_server.messages) == 1


async def test_test_operation(smtp_server: SmtpSink) -> None:
    ok = await SENDER.test(spec(smtp_server.port))
    where = f"SMTP server 127.0.0.1:{smtp_server.port}"
    assert ok == f"connected to {where} as 'cam'; 2 recipient(s) accepted"
    assert smtp_server.messages == []  # the test sends nothing
    with pytest.raises(DeliveryError, match=r"refused the login for 'cam' \(535"):
        await SENDER.test(spec(smtp_server.port, password="nope"))
    smtp_server.refuse = {"boss@example.com"}
    with pytest.raises(DeliveryError, match=r"refused the recipient boss@example\.com \(550"):
        await SENDER.test(spec(smtp_server.port))
