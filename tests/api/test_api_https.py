"""HTTPS beside HTTP: the generated certificate, uploads, redirect and off modes."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from apihelpers import ADMIN, basic_header
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from camio.app import CamioApp, Settings

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[CamioApp]:
    monkeypatch.setenv("CAMIO_ADMIN_USER", ADMIN[0])
    monkeypatch.setenv("CAMIO_ADMIN_PASSWORD", ADMIN[1])
    daemon = CamioApp(Settings(data_dir=tmp_path / "data", port=0), out=io.StringIO())
    await daemon.start()
    try:
        yield daemon
    finally:
        await daemon.stop()


def _client() -> aiohttp.ClientSession:
    # The device's certificate is self-signed: these tests check it by fingerprint instead.
    return aiohttp.ClientSession(
        headers=basic_header(*ADMIN), connector=aiohttp.TCPConnector(ssl=False)
    )


async def _peer_fingerprint(url: str) -> str:
    host, port = url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    _reader, writer = await asyncio.open_connection(host, int(port), ssl=context)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    return hashlib.sha256(der).hexdigest()


def _pair(name: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


async def test_https_is_on_by_default_with_a_generated_certificate(app: CamioApp) -> None:
    assert app.https_url is not None
    async with _client() as client:
        async with client.get(app.https_url + "/api/v1/ports") as resp:
            assert resp.status == 200
            assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
        async with client.get(app.https_url + "/api/v1/system") as resp:
            tls = (await resp.json())["tls"]
    assert tls["enabled"] and tls["self_signed"] and tls["port"] == app.https_port
    assert tls["sha256"] == await _peer_fingerprint(app.https_url)
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as browser,
        browser.post(
            app.https_url + "/api/v1/session",
            json={"username": ADMIN[0], "password": ADMIN[1]},
        ) as resp,
    ):
        assert resp.status == 200
        assert "Secure" in resp.headers["Set-Cookie"]


async def test_an_uploaded_certificate_is_served_at_once(app: CamioApp) -> None:
    cert, key = _pair("door.example")
    other_cert, _ = _pair("other.example")
    assert app.https_url is not None
    async with _client() as client:
        async with client.put(
            app.url + "/api/v1/system/tls", json={"certificate": other_cert, "private_key": key}
        ) as resp:
            assert resp.status == 422  # key of another certificate: refused, nothing changed
        async with client.put(
            app.url + "/api/v1/system/tls", json={"certificate": cert, "private_key": key}
        ) as resp:
            assert resp.status == 200, await resp.text()
            info = await resp.json()
    assert info["subject"] == "CN=door.example" and info["self_signed"]
    assert info["sha256"] == await _peer_fingerprint(app.https_url)


async def test_redirect_and_off_modes(app: CamioApp) -> None:
    http = app.url
    assert app.https_url is not None
    async with _client() as client:
        async with client.put(http + "/api/v1/system/http", json={"mode": "redirect"}) as resp:
            assert resp.status == 200
        for _ in range(100):  # the listeners are reconciled on the loop right after
            await asyncio.sleep(0.01)
            if app._policy.redirect_to_port is not None:
                break
        async with client.get(http + "/api/v1/ports", allow_redirects=False) as resp:
            assert resp.status == 308
            assert resp.headers["Location"] == f"{app.https_url}/api/v1/ports"
        async with client.put(app.https_url + "/api/v1/system/http", json={"mode": "off"}) as resp:
            assert resp.status == 200
        for _ in range(100):
            await asyncio.sleep(0.01)
            if app._http_site is None:
                break
        with pytest.raises(aiohttp.ClientConnectionError):
            async with aiohttp.ClientSession() as fresh, fresh.get(http + "/api/v1/health"):
                pass
        async with client.get(app.https_url + "/api/v1/health") as resp:
            assert resp.status == 200


async def test_an_explicit_listen_keeps_plain_http(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", port=0, explicit_listen=True)
    daemon = CamioApp(settings, out=io.StringIO())
    await daemon.start()
    try:
        assert daemon.device is not None
        daemon.device.edit_config(lambda data: data["network"].update(http_mode="off"))
        for _ in range(100):
            await asyncio.sleep(0.01)
        async with (
            aiohttp.ClientSession() as client,
            client.get(daemon.url + "/api/v1/health") as resp,
        ):
            assert resp.status == 200
    finally:
        await daemon.stop()
