"""Security review: each test reproduces a defect found in review (and guards its fix)."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from typing import Any

import aiohttp
import httpx
import pytest
from onvif_helpers import RawSoap, envelope, fault_subcodes, username_token
from vapix_helpers import ADMIN, OPERATOR, VIEWER, Server

pytestmark = pytest.mark.asyncio


def _noncanonical(nonce_b64: str) -> str:
    """The same nonce bytes, spelled differently: Base64's unused low bits of the last
    character before '=' padding are ignored by decoders."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    body = nonce_b64.rstrip("=")
    last = alphabet.index(body[-1])
    changed = body[:-1] + alphabet[last ^ 1] + nonce_b64[len(body) :]
    assert base64.b64decode(changed) == base64.b64decode(nonce_b64)
    assert changed != nonce_b64
    return changed


async def test_onvif_replay_with_respelled_nonce_refused(server: Server) -> None:
    """A captured UsernameToken replayed with the Nonce re-encoded (same bytes) is a replay."""
    raw = RawSoap(server.url)
    nonce = os.urandom(16)  # 16 bytes: '==' padding, 4 ignored bits in the last character
    token = username_token(*ADMIN, nonce=nonce)
    body = "<tds:GetDeviceInformation/>"
    first = await raw.post("/onvif/device_service", envelope(body, token))
    assert first.status_code == 200, first.text
    nonce_b64 = base64.b64encode(nonce).decode()
    respelled = token.replace(nonce_b64, _noncanonical(nonce_b64))
    again = await raw.post("/onvif/device_service", envelope(body, respelled))
    assert again.status_code == 400, again.text
    assert "ter:NotAuthorized" in fault_subcodes(again.content)


def _switch(server: Server, dialect: str, on: bool) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["dialects"][dialect]["enabled"] = on

    server.device.edit_config(edit)


async def _ends(resp: httpx.Response, within: float = 5.0) -> None:
    """The streamed answer ends (the server closed it) within ``within`` seconds."""
    async with asyncio.timeout(within):
        async for _ in resp.aiter_bytes():
            pass


async def test_dahua_event_stream_ends_when_dialect_switched_off(server: Server) -> None:
    """Switching a dialect off must also end what it already serves (as ISAPI's stream does)."""
    _switch(server, "dahua", True)
    client = server.digest(*VIEWER)
    url = "/cgi-bin/eventManager.cgi?action=attach&codes=[All]&heartbeat=1"
    async with client.stream("GET", url) as resp:
        assert resp.status_code == 200
        _switch(server, "dahua", False)
        await _ends(resp)


async def test_vapix_port_monitor_ends_when_dialect_switched_off(server: Server) -> None:
    client = server.digest(*VIEWER)
    async with client.stream("GET", "/axis-cgi/io/port.cgi?monitor=1") as resp:
        assert resp.status_code == 200
        _switch(server, "vapix", False)
        await _ends(resp)


async def test_vapix_websocket_ends_when_dialect_switched_off(server: Server) -> None:
    client = server.digest(*VIEWER)
    token = (await client.get("/axis-cgi/wssession.cgi")).text.strip()
    url = server.url.replace("http://", "ws://") + "/vapix/ws-data-stream"
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{url}?sources=events&wssession={token}")
        await ws.send_json({"apiVersion": "1.0", "method": "events:configure"})
        assert (await ws.receive(5)).type is aiohttp.WSMsgType.TEXT  # configured
        _switch(server, "vapix", False)
        async with asyncio.timeout(5):
            while (await ws.receive()).type is aiohttp.WSMsgType.TEXT:
                pass
        assert ws.closed


async def test_onvif_subscriptions_end_when_dialect_switched_off(server: Server) -> None:
    """A push subscription would keep sending events to its consumer with ONVIF off."""
    from onvif_event_helpers import connect, create_pullpoint

    from camio.dialects.onvif.subscriptions import registry_of

    cam = await connect(server)
    try:
        await create_pullpoint(cam)
        assert len(registry_of(server.device)) == 1
        _switch(server, "onvif", False)
        assert len(registry_of(server.device)) == 0
    finally:
        await cam.close()


async def test_vapix_websocket_honours_digest_only(server: Server) -> None:
    """With VAPIX Basic switched off, the WebSocket upgrade must not take Basic either (it was
    checked by the native API's authenticator, realm and Basic setting included)."""

    def digest_only(data: dict[str, Any]) -> None:
        data["dialects"]["vapix"]["allow_basic"] = False

    server.device.edit_config(digest_only)
    url = server.url.replace("http://", "ws://") + "/vapix/ws-data-stream?sources=events"
    headers = {"Authorization": aiohttp.encode_basic_auth(*VIEWER)}
    async with aiohttp.ClientSession(headers=headers) as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await session.ws_connect(url)
    assert err.value.status == 401


FOSCAM_SOURCE = "http://cam.example/cgi-bin/CGIProxy.fcgi?cmd=snapPicture2&usr=admin&pwd=s3cret"


async def test_source_url_query_credentials_are_redacted() -> None:
    """A source such as a Foscam camera's takes its password in the query (``pwd=``): the
    status a viewer reads, the worker's view and FFmpeg's errors must not show it."""
    from camio.core.media import redact_url
    from camio.video.source import redact

    assert "s3cret" not in redact_url(FOSCAM_SOURCE)
    assert "usr=admin" in redact_url(FOSCAM_SOURCE)
    assert "s3cret" not in redact(f"Server returned 401 Unauthorized: '{FOSCAM_SOURCE}'")
    assert "s3cret" not in redact("rtsp://cam.example/live?user=admin&password=s3cret")


async def test_source_url_password_with_at_sign_is_redacted() -> None:
    """FFmpeg (like urlsplit) takes the last '@' of the authority: 'p@ss' is one password."""
    from camio.core.media import redact_url
    from camio.video.source import redact

    url = "rtsp://admin:s3c@ret@cam.example:554/live"
    assert "ret" not in redact_url(url).replace("cam.example", "")
    assert "ret" not in redact(f"error opening {url}: 404").replace("cam.example", "")


async def test_onvif_stream_uri_drops_query_credentials() -> None:
    """GetStreamUri (any viewer) hands out the source URL: no password in its query either."""
    from camio.dialects.onvif.media import strip_credentials

    uri = strip_credentials("rtsp://u:p4ss@cam.example:554/live?user=admin&password=s3cret")
    assert "s3cret" not in uri
    assert "p4ss" not in uri


async def test_onvif_replay_cache_not_flushed_by_other_tokens(server: Server) -> None:
    """Any account filling the replay cache must not evict a nonce still inside its window:
    a UsernameToken signs no body, so a replayed admin token works on any operation."""

    def small_cache(data: dict[str, Any]) -> None:
        data["dialects"]["onvif"]["nonce_cache"] = 16

    server.device.edit_config(small_cache)
    raw = RawSoap(server.url)
    body = "<tds:GetDeviceInformation/>"
    captured = username_token(*ADMIN)
    assert (await raw.post("/onvif/device_service", envelope(body, captured))).status_code == 200
    for _ in range(16):
        token = username_token(*VIEWER)
        await raw.post("/onvif/device_service", envelope(body, token))
    replay = await raw.post("/onvif/device_service", envelope(body, captured))
    assert replay.status_code == 400, replay.text
    assert "ter:NotAuthorized" in fault_subcodes(replay.content)


_EV = (
    'xmlns:tev="http://www.onvif.org/ver10/events/wsdl" '
    'xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" '
    'xmlns:wsa="http://www.w3.org/2005/08/addressing"'
)


async def test_onvif_push_consumer_password_not_logged(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """A consumer address may carry user info (``http://vms:pw@host/notify``): never logged."""
    caplog.set_level(logging.DEBUG)
    raw = RawSoap(server.url)
    consumer = "http://vms:n0tify-s3cret@127.0.0.1:9/notify?token=t0ken-s3cret"
    body = (
        f"<wsnt:Subscribe {_EV}><wsnt:ConsumerReference><wsa:Address>{consumer}"
        "</wsa:Address></wsnt:ConsumerReference>"
        "<wsnt:InitialTerminationTime>PT60S</wsnt:InitialTerminationTime></wsnt:Subscribe>"
    )
    resp = await raw.post("/onvif/event_service", envelope(body, username_token(*VIEWER)))
    assert resp.status_code == 200, resp.text
    await asyncio.sleep(0.5)  # the first Notify attempt fails (nothing listens on port 9)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "ONVIF push subscription" in logged
    assert "s3cret" not in logged


async def test_dialect_get_from_another_site_refused(server: Server) -> None:
    """Dialect CGIs change state on GET (port.cgi?action=, relayon.txt, setConfig). A browser
    that holds Basic/Digest credentials for the device sends them with any cross-site <img>
    or link: such a request must not switch a relay (cameras' clients send no Sec-Fetch-*)."""
    client = server.digest(*OPERATOR)
    resp = await client.get(
        "/axis-cgi/io/port.cgi?action=3%3A%2F", headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert resp.status_code == 403
    assert server.device.port_status("out1")["active"] is False
    same = await client.get("/axis-cgi/io/port.cgi?check=3", headers={"Sec-Fetch-Site": "none"})
    assert same.status_code == 200


async def test_mqtt_status_flood_does_not_grow_the_send_queue() -> None:
    """Every ``homeassistant/status online`` re-sends every discovery config and state; any
    broker client may publish it, so a flood must not queue that work without bound."""
    from types import SimpleNamespace

    from camio.core.clock import ManualClock
    from camio.core.config import DeviceConfig
    from camio.engine.device import Device
    from camio.hardware.sim import SimDriver
    from camio.mqtt import MqttService

    device = Device(DeviceConfig(), driver=SimDriver(), clock=ManualClock())
    device.start()
    service = MqttService(device)
    try:
        status = f"{device.config.mqtt.discovery.prefix}/status"
        message = SimpleNamespace(
            topic=SimpleNamespace(value=status), payload=b"online", retain=False
        )
        service._on_message(message)  # type: ignore[arg-type]
        once = len(service._out)
        assert once > 0
        for _ in range(200):
            service._on_message(message)  # type: ignore[arg-type]
        assert len(service._out) <= 2 * once
    finally:
        await service.close()
        device.stop()


@pytest.mark.parametrize(
    ("dialect", "module", "url"),
    [
        (
            "dahua",
            "camio.dialects.dahua.events",
            "/cgi-bin/eventManager.cgi?action=attach&codes=[All]",
        ),
        ("isapi", "camio.dialects.isapi.alerts", "/ISAPI/Event/notification/alertStream"),
        ("vapix", "camio.dialects.vapix.portcgi", "/axis-cgi/io/port.cgi?monitor=1"),
    ],
)
async def test_dialect_event_streams_are_bounded(
    server: Server, monkeypatch: pytest.MonkeyPatch, dialect: str, module: str, url: str
) -> None:
    """Each open stream is a subscription every event fans out to: a viewer must not be able
    to open them without bound (the VAPIX WebSocket already refuses beyond MAX_STREAMS)."""
    import importlib

    monkeypatch.setattr(importlib.import_module(module), "MAX_STREAMS", 1)
    _switch(server, dialect, True)
    client = server.digest(*VIEWER)
    async with client.stream("GET", url) as first:
        assert first.status_code == 200
        await asyncio.sleep(0.2)
        second = await client.get(url)
        assert second.status_code == 503
