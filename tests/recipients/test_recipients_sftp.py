"""SFTP recipient against a real asyncssh server on loopback (SFTP rooted in a tmp dir)."""

from __future__ import annotations

from typing import Any

import asyncssh
import pytest
from pydantic import ValidationError
from recipient_helpers import JPEG, SftpSite, free_port, make_delivery

from camio.core.recipients import RECIPIENT_MODELS
from camio.recipients.base import DeliveryError
from camio.recipients.sftp import SftpRecipient, SftpSender

SENDER = SftpSender()


def spec(site: SftpSite | None, **overrides: Any) -> SftpRecipient:
    fields: dict[str, Any] = {
        "id": "sftp1",
        "name": "Archive",
        "host": "127.0.0.1",
        "port": site.port if site else free_port(),
        "username": "cam",
        "password": "secret",
        "host_key": site.host_key if site else None,
        "directory": "alarms/{date}",
        "timeout": 5,
    }
    fields.update(overrides)
    return SftpRecipient.model_validate(fields)


def test_model() -> None:
    assert RECIPIENT_MODELS["sftp"] is SftpRecipient
    with pytest.raises(ValidationError, match="host_key is not an OpenSSH public key line"):
        spec(None, host_key="ssh-ed25519 garbage")
    with pytest.raises(ValidationError, match="private_key cannot be read"):
        spec(None, private_key="-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n")
    with pytest.raises(ValidationError, match="set a password or a private_key"):
        spec(None, password=None)


async def test_upload_with_password(sftp_server: SftpSite) -> None:
    delivery = make_delivery("evt-42-sftp1")
    await SENDER.send(spec(sftp_server), delivery)
    folder = sftp_server.root / "alarms" / "2026-11-22"
    assert [p.name for p in folder.iterdir()] == ["evt-42-sftp1-snapshot.jpg"]
    assert (folder / "evt-42-sftp1-snapshot.jpg").read_bytes() == JPEG
    await SENDER.send(spec(sftp_server), delivery)  # a retry overwrites the same file
    assert [p.name for p in folder.iterdir()] == ["evt-42-sftp1-snapshot.jpg"]


async def test_upload_with_private_key_and_known_hosts(sftp_server: SftpSite) -> None:
    known_hosts = f"[127.0.0.1]:{sftp_server.port} {sftp_server.host_key}\n"
    recipient = spec(
        sftp_server,
        password=None,
        private_key=sftp_server.client_key,
        host_key=None,
        known_hosts=known_hosts,
        directory="/{recipient}",
    )
    await SENDER.send(recipient, make_delivery("k1", attachments=False))
    text = (sftp_server.root / "r1" / "k1-message.txt").read_text()
    assert text.startswith("Alarm: door 1 opened")


async def test_wrong_host_key_is_refused(sftp_server: SftpSite) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    for recipient in (
        spec(sftp_server, host_key=other),
        spec(sftp_server, host_key=None, known_hosts=f"[127.0.0.1]:{sftp_server.port} {other}"),
    ):
        with pytest.raises(DeliveryError) as info:
            await SENDER.send(recipient, make_delivery())
        assert info.value.permanent
        assert str(info.value).startswith(
            "SFTP host key for 127.0.0.1 does not match the configured one"
        )
    assert list(sftp_server.root.iterdir()) == []


async def test_missing_host_key_config_is_refused(sftp_server: SftpSite) -> None:
    with pytest.raises(DeliveryError, match="no host key configured") as info:
        await SENDER.send(spec(sftp_server, host_key=None), make_delivery())
    assert info.value.permanent
    assert list(sftp_server.root.iterdir()) == []
    # Unless the user explicitly opts out of checking.
    insecure = spec(sftp_server, host_key=None, insecure_skip_host_key=True)
    await SENDER.send(insecure, make_delivery())
    assert "host key not checked" in await SENDER.test(insecure)


async def test_wrong_password_is_permanent(sftp_server: SftpSite) -> None:
    with pytest.raises(DeliveryError) as info:
        await SENDER.send(spec(sftp_server, password="nope"), make_delivery())
    assert info.value.permanent
    assert str(info.value).startswith(
        f"SFTP server 127.0.0.1:{sftp_server.port} refused the login for 'cam' (password"
    )


async def test_directory_blocked_is_permanent(sftp_server: SftpSite) -> None:
    (sftp_server.root / "alarms").write_text("a file where a directory should be")
    with pytest.raises(DeliveryError) as info:
        await SENDER.send(spec(sftp_server), make_delivery())
    assert str(info.value) == (
        "SFTP: cannot create directory alarms: a file with that name is in the way"
    )
    assert info.value.permanent


async def test_server_down_is_retryable() -> None:
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    recipient = spec(None, host_key=key)
    with pytest.raises(
        DeliveryError, match=f"cannot connect to SFTP server 127.0.0.1:{recipient.port}"
    ) as info:
        await SENDER.send(recipient, make_delivery())
    assert not info.value.permanent


async def test_test_operation(sftp_server: SftpSite) -> None:
    ok = await SENDER.test(spec(sftp_server))
    assert (
        ok == f"logged in to SFTP server 127.0.0.1:{sftp_server.port} as 'cam' (host key verified)"
    )
    assert list(sftp_server.root.iterdir()) == []  # nothing written
    with pytest.raises(DeliveryError, match="does not match the configured one"):
        other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
        await SENDER.test(spec(sftp_server, host_key=other))
    with pytest.raises(DeliveryError, match="refused the login for 'cam'"):
        await SENDER.test(spec(sftp_server, password="nope"))
