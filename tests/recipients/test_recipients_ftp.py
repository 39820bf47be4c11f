"""FTP recipient against a real pyftpdlib server (in a thread) on loopback."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from recipient_helpers import JPEG, FtpSite, SelfSigned, free_port, make_delivery

from camio.core.recipients import RECIPIENT_MODELS
from camio.recipients.base import Delivery, DeliveryError
from camio.recipients.ftp import FtpRecipient, FtpSender, render_directory, upload_items

SENDER = FtpSender()


def spec(port: int, **overrides: Any) -> FtpRecipient:
    fields: dict[str, Any] = {
        "id": "ftp1",
        "name": "NAS",
        "host": "127.0.0.1",
        "port": port,
        "username": "cam",
        "password": "secret",
        "directory": "alarms/{date}/{recipient}",
        "timeout": 5,
    }
    fields.update(overrides)
    return FtpRecipient.model_validate(fields)


def test_model_and_templates() -> None:
    assert RECIPIENT_MODELS["ftp"] is FtpRecipient
    with pytest.raises(ValidationError, match=r"unknown field \{nope\}"):
        spec(21, directory="alarms/{nope}")
    with pytest.raises(ValidationError, match=r"cannot contain '\.\.'"):
        spec(21, directory="alarms/../etc")
    with pytest.raises(ValidationError, match="not an allowed field"):
        spec(21, directory="{event.__class__}")
    with pytest.raises(ValidationError, match="active-mode FTP is not supported"):
        spec(21, passive=False)
    delivery = make_delivery("../../evil/key")
    rendered = render_directory("/up/{date}/{time}/{key}/{event.topic}/{recipient}", delivery)
    assert rendered == "/up/2026-11-22/010203/evil_key/input_door-1/r1"
    assert render_directory("", delivery) == ""
    assert render_directory("a/{device.name}/b", delivery) == "a/b"  # unknown -> empty, dropped
    names = [name for name, _ in upload_items(delivery)]
    assert names == ["evil_key-snapshot.jpg"]
    text = Delivery(key="k1", recipient_id="r1", subject="S", body="B")
    assert upload_items(text) == [("k1-message.txt", b"S\n\nB\n")]


async def test_upload_creates_directories_and_renames(ftp_server: FtpSite) -> None:
    delivery = make_delivery("evt-42-ftp1")
    await SENDER.send(spec(ftp_server.port), delivery)
    folder = ftp_server.root / "alarms" / "2026-11-22" / "r1"
    assert [p.name for p in folder.iterdir()] == ["evt-42-ftp1-snapshot.jpg"]  # no .part left
    assert (folder / "evt-42-ftp1-snapshot.jpg").read_bytes() == JPEG
    # A retry of the same delivery overwrites the same file: still one file.
    await SENDER.send(spec(ftp_server.port), delivery)
    assert [p.name for p in folder.iterdir()] == ["evt-42-ftp1-snapshot.jpg"]


async def test_body_as_text_in_login_directory(ftp_server: FtpSite) -> None:
    await SENDER.send(spec(ftp_server.port, directory=""), make_delivery("k2", attachments=False))
    written = (ftp_server.root / "k2-message.txt").read_text()
    assert written.startswith("Alarm: door 1 opened\n\nInput door-1 went active")


async def test_wrong_password_is_permanent(ftp_server: FtpSite) -> None:
    with pytest.raises(DeliveryError) as info:
        await SENDER.send(spec(ftp_server.port, password="nope"), make_delivery())
    assert info.value.permanent
    assert str(info.value) == (
        f"FTP server 127.0.0.1:{ftp_server.port} refused the login for 'cam' "
        "(530 Authentication failed.)"
    )


async def test_directory_refused_is_permanent(ftp_server: FtpSite) -> None:
    recipient = spec(ftp_server.port, username="viewer", password="pw", directory="alarms/{date}")
    with pytest.raises(DeliveryError) as info:
        await SENDER.send(recipient, make_delivery())
    assert info.value.permanent
    assert str(info.value) == "FTP: cannot create directory alarms: 550 Not enough privileges."


async def test_upload_refused_is_permanent(ftp_server: FtpSite) -> None:
    (ftp_server.root / "drop").mkdir()
    recipient = spec(ftp_server.port, username="viewer", password="pw", directory="drop")
    with pytest.raises(
        DeliveryError, match=r"^FTP: cannot upload drop/evt-42-cam-snapshot\.jpg\.part: 550 "
    ) as info:
        await SENDER.send(recipient, make_delivery())
    assert info.value.permanent


async def test_server_down_is_retryable() -> None:
    port = free_port()
    with pytest.raises(
        DeliveryError, match=f"^cannot connect to FTP server 127.0.0.1:{port}: "
    ) as info:
        await SENDER.send(spec(port), make_delivery())
    assert not info.value.permanent


async def test_test_operation(ftp_server: FtpSite) -> None:
    where = f"FTP server 127.0.0.1:{ftp_server.port}"
    message = await SENDER.test(spec(ftp_server.port))
    assert message == (
        f"logged in to {where} as 'cam'; directory alarms does not exist yet and will be created"
    )
    (ftp_server.root / "alarms").mkdir()
    assert await SENDER.test(spec(ftp_server.port)) == f"logged in to {where} as 'cam'"
    assert [p.name for p in (ftp_server.root / "alarms").iterdir()] == []  # nothing written
    with pytest.raises(DeliveryError, match=r"refused the login for 'cam' \(530"):
        await SENDER.test(spec(ftp_server.port, password="nope"))


async def test_explicit_ftps(ftps_server: FtpSite, self_signed: SelfSigned) -> None:
    port = ftps_server.port
    await SENDER.send(spec(port, tls=True, ca_file=str(self_signed.cert)), make_delivery("k"))
    assert (
        ftps_server.root / "alarms" / "2026-11-22" / "r1" / "k-snapshot.jpg"
    ).read_bytes() == JPEG
    # Certificate checking is on by default.
    with pytest.raises(DeliveryError, match="certificate could not be verified") as info:
        await SENDER.send(spec(port, tls=True), make_delivery())
    assert info.value.permanent
    assert "logged in" in await SENDER.test(spec(port, tls=True, verify_certificate=False))
    # Without TLS the server refuses the login, and says why.
    with pytest.raises(
        DeliveryError, match=r"refused the login for 'cam' \(550 SSL/TLS required"
    ) as info:
        await SENDER.send(spec(port), make_delivery())
    assert info.value.permanent
