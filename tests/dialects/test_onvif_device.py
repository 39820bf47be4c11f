"""The ONVIF dialect (Device, DeviceIO, Media, WS-Security, WS-Discovery) against the real
onvif-zeep-async client, raw hostile requests, and the ONVIF schemas the client ships."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator

import pytest
from lxml import etree
from onvif import ONVIFCamera
from onvif_helpers import (
    ENV,
    RawSoap,
    body_child,
    build_schema,
    envelope,
    fault_subcodes,
    stale,
    username_token,
)
from vapix_helpers import ADMIN, OPERATOR, VIEWER, Server
from zeep.exceptions import Fault

from camio.dialects.onvif import routes as onvif_routes
from camio.dialects.onvif.discovery import DiscoveryResponder, probe_message
from camio.video import VIDEO

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="session")
def schema(tmp_path_factory: pytest.TempPathFactory) -> etree.XMLSchema:
    return build_schema(tmp_path_factory.mktemp("onvif-xsd"))


@pytest.fixture
def replies(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, bytes]]]:
    """Every SOAP reply the device sends during the test."""
    seen: list[tuple[int, bytes]] = []
    original = onvif_routes._response

    def recording(body: bytes, status: int, headers: dict[str, list[str]] | None = None):  # type: ignore[no-untyped-def]
        seen.append((status, body))
        return original(body, status, headers)

    monkeypatch.setattr(onvif_routes, "_response", recording)
    yield seen


def assert_valid(schema: etree.XMLSchema, replies: list[tuple[int, bytes]]) -> None:
    assert replies
    for status, body in replies:
        child = body_child(body)
        if child.tag == f"{{{ENV}}}Fault":
            assert status != 500, body
            continue
        assert status == 200
        assert schema.validate(child), (schema.error_log.last_error, body[:600])


def _subcodes(fault: Fault) -> str:
    return " ".join(getattr(q, "localname", str(q)) for q in fault.subcodes or [])


def camera(server: Server, user: tuple[str, str]) -> ONVIFCamera:
    return ONVIFCamera(server.host, server.port, user[0], user[1])


def _ports(server: Server) -> tuple[str, str]:
    device = server.device
    return next(iter(device.inputs)), next(iter(device.outputs))


async def test_client_connects_and_drives_relays(
    server: Server, replies: list[tuple[int, bytes]], schema: etree.XMLSchema
) -> None:
    in_id, out_id = _ports(server)
    cam = camera(server, ADMIN)
    try:
        await cam.update_xaddrs()
        assert "http://www.onvif.org/ver10/deviceIO/wsdl" in cam.xaddrs
        caps = await cam.get_capabilities()
        assert caps is not None
        mgmt = await cam.create_devicemgmt_service()
        info = await mgmt.GetDeviceInformation()
        assert info.SerialNumber == server.device.config.device.serial
        assert info.Model == server.device.config.device.model
        now = await mgmt.GetSystemDateAndTime()
        assert now.DateTimeType == "NTP" and now.UTCDateTime.Date.Year >= 2024
        nics = await mgmt.GetNetworkInterfaces()
        assert nics[0].Info.HwAddress.startswith("02:")
        await mgmt.GetScopes()
        await mgmt.GetHostname()
        users = await mgmt.GetUsers()
        assert {u.Username for u in users} >= {ADMIN[0], OPERATOR[0], VIEWER[0]}
        await mgmt.GetServices({"IncludeCapability": True})
        await mgmt.GetServiceCapabilities()

        io = await cam.create_deviceio_service()
        inputs = await io.GetDigitalInputs()
        assert in_id in [i.token for i in inputs]
        relays = await io.GetRelayOutputs()
        assert out_id in [r.token for r in relays]
        await io.GetRelayOutputOptions({})
        await io.GetServiceCapabilities()

        await io.SetRelayOutputState({"RelayOutputToken": out_id, "LogicalState": "active"})
        status = server.device.port_status(out_id)
        assert status["active"] is True
        assert status["circuit"] == server.device.output(out_id).config.active_state
        assert status["cause"]["user"] == ADMIN[0]
        await io.SetRelayOutputState({"RelayOutputToken": out_id, "LogicalState": "inactive"})
        assert server.device.port_status(out_id)["active"] is False

        await io.SetRelayOutputSettings(
            {
                "RelayOutput": {
                    "token": out_id,
                    "Properties": {
                        "Mode": "Monostable",
                        "DelayTime": "PT2S",
                        "IdleState": "closed",
                    },
                }
            }
        )
        cfg = server.device.output(out_id).config
        assert cfg.alarm_time_ms == 2000 and cfg.active_state == "open"
        relays = await io.GetRelayOutputs()
        props = next(r for r in relays if r.token == out_id).Properties
        assert props.Mode == "Monostable" and props.IdleState == "closed"
        # the legacy device-service variant, back to a bistable normally-open relay
        await mgmt.SetRelayOutputSettings(
            {
                "RelayOutputToken": out_id,
                "Properties": {"Mode": "Bistable", "DelayTime": "PT0S", "IdleState": "open"},
            }
        )
        cfg = server.device.output(out_id).config
        assert cfg.alarm_time_ms == 0 and cfg.active_state == "closed"

        media = await cam.create_media_service()
        await media.GetServiceCapabilities()
        profiles = await media.GetProfiles()
        video = server.device.services.get(VIDEO)
        if video is not None and video.enabled:
            assert profiles[0].VideoEncoderConfiguration.Encoding == "H264"
            uri = await media.GetSnapshotUri({"ProfileToken": profiles[0].token})
            assert uri.Uri.endswith("/api/v1/video/snapshot")
            await media.GetVideoSources()
    finally:
        await cam.close()
    assert_valid(schema, replies)


async def test_roles_are_enforced(server: Server) -> None:
    _, out_id = _ports(server)
    cam = camera(server, VIEWER)
    try:
        await cam.update_xaddrs()
        io = await cam.create_deviceio_service()
        await io.GetRelayOutputs()
        with pytest.raises(Fault) as err:
            await io.SetRelayOutputState({"RelayOutputToken": out_id, "LogicalState": "active"})
        assert "NotAuthorized" in _subcodes(err.value)
        assert server.device.port_status(out_id)["active"] is False
    finally:
        await cam.close()


async def test_wrong_password_refused(server: Server) -> None:
    cam = camera(server, (ADMIN[0], "not-the-password"))
    try:
        await cam.update_xaddrs()  # pre-auth GetServices still checks the token it got
    except Fault as exc:
        assert "NotAuthorized" in _subcodes(exc)
    else:
        pytest.fail("a wrong password was accepted")
    finally:
        await cam.close()


async def test_replayed_nonce_and_stale_created_refused(server: Server) -> None:
    raw = RawSoap(server.url)
    nonce = os.urandom(16)
    token = username_token(*ADMIN, nonce=nonce)
    body = "<tds:GetDeviceInformation/>"
    first = await raw.post("/onvif/device_service", envelope(body, token))
    assert first.status_code == 200, first.text
    again = await raw.post("/onvif/device_service", envelope(body, token))
    assert again.status_code == 400
    assert "ter:NotAuthorized" in fault_subcodes(again.content)
    old = username_token(*ADMIN, created=stale(60))
    late = await raw.post("/onvif/device_service", envelope(body, old))
    assert late.status_code == 400
    assert "ter:NotAuthorized" in fault_subcodes(late.content)
    none = await raw.post("/onvif/device_service", envelope(body))
    assert none.status_code == 401
    assert "ter:NotAuthorized" in fault_subcodes(none.content)
    public = await raw.post("/onvif/device_service", envelope("<tds:GetSystemDateAndTime/>"))
    assert public.status_code == 200


BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
    b"<GetDeviceInformation>&lol3;</GetDeviceInformation></s:Body></s:Envelope>"
)
XXE = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
    b"<GetDeviceInformation>&x;</GetDeviceInformation></s:Body></s:Envelope>"
)


async def test_hostile_requests_get_faults(server: Server) -> None:
    _, out_id = _ports(server)
    before = server.device.port_status(out_id)
    raw = RawSoap(server.url)
    set_active = (
        f"<tds:SetRelayOutputState><tds:RelayOutputToken>{out_id}</tds:RelayOutputToken>"
        "<tds:LogicalState>active</tds:LogicalState></tds:SetRelayOutputState>"
    )
    cases = {
        "malformed": b"<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Body>",
        "bomb": BOMB,
        "xxe": XXE,
        "huge": envelope(set_active, username_token(*ADMIN) + "<x>" + "a" * 3_000_000 + "</x>"),
        "not xml": b'{"json": true}',
    }
    for name, data in cases.items():
        resp = await raw.post("/onvif/deviceio_service", data)
        assert resp.status_code in (400, 413), (name, resp.status_code)
        assert "etc/passwd" not in resp.text and "root:" not in resp.text
        fault_subcodes(resp.content)
    unknown = await raw.post(
        "/onvif/device_service", envelope("<tds:NoSuchOperation/>", username_token(*ADMIN))
    )
    assert unknown.status_code == 400
    assert "ter:ActionNotSupported" in fault_subcodes(unknown.content)
    bad_arg = await raw.post(
        "/onvif/deviceio_service",
        envelope(set_active.replace(out_id, "nope"), username_token(*ADMIN)),
    )
    assert "ter:RelayToken" in fault_subcodes(bad_arg.content)
    bad_state = await raw.post(
        "/onvif/deviceio_service",
        envelope(set_active.replace(">active<", ">sideways<"), username_token(*ADMIN)),
    )
    assert "ter:InvalidArgVal" in fault_subcodes(bad_state.content)
    after = server.device.port_status(out_id)
    assert (after["active"], after["config"]) == (before["active"], before["config"])


async def test_http_digest_on_onvif_paths(server: Server) -> None:
    client = server.digest(*OPERATOR)
    resp = await client.post(
        "/onvif/device_service",
        content=envelope("<tds:GetDeviceInformation/>"),
        headers={"Content-Type": "application/soap+xml"},
    )
    assert resp.status_code == 200, resp.text


async def test_discovery_probe_on_loopback(server: Server) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    responder = DiscoveryResponder(
        server.device, addresses=["127.0.0.1"], port=free, http_port=server.port
    )
    await responder.start()
    try:
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.bind(("127.0.0.1", 0))
            client.setblocking(False)
            message_id = f"urn:uuid:{uuid.uuid4()}"
            data = probe_message(
                message_id,
                types="dn:NetworkVideoTransmitter",
                scopes_="onvif://www.onvif.org/name",
            ).replace(
                b"<d:Types",
                b'<d:Types xmlns:dn="http://www.onvif.org/ver10/network/wsdl"',
            )
            client.sendto(data, ("127.0.0.1", free))
            reply = await asyncio.wait_for(loop.sock_recv(client, 65536), 5)
            # a probe for scopes the device lacks gets no answer
            client.sendto(
                probe_message("urn:uuid:x", scopes_="onvif://www.onvif.org/Profile/G"),
                ("127.0.0.1", free),
            )
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(loop.sock_recv(client, 65536), 0.5)
    finally:
        await responder.stop()
    root = etree.fromstring(reply)
    d = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
    assert root.findtext(".//{http://schemas.xmlsoap.org/ws/2004/08/addressing}RelatesTo") == (
        message_id
    )
    xaddrs = root.findtext(f".//{{{d}}}XAddrs")
    assert xaddrs == f"http://127.0.0.1:{server.port}/onvif/device_service"
    assert "NetworkVideoTransmitter" in (root.findtext(f".//{{{d}}}Types") or "")
