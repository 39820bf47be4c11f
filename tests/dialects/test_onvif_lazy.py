"""The ONVIF dialect loads lazily: a daemon no ONVIF client has talked to holds no lxml and no
ONVIF service module (WS-Discovery included); the first SOAP request loads them and is answered
as before. Plus the light mounting module's contract and the stdlib WS-Discovery parser."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree
from onvif_helpers import ENV, RawSoap, envelope
from vapix_helpers import Server

from camio.dialects.onvif import common, mount, soap
from camio.dialects.onvif.discovery import MAX_DATAGRAM, parse_datagram, probe_message

TDS = "http://www.onvif.org/ver10/device/wsdl"
TT = "http://www.onvif.org/ver10/schema"
D = "http://schemas.xmlsoap.org/ws/2005/04/discovery"

#: Run in a fresh interpreter: start a daemon with ONVIF and WS-Discovery on, look at
#: sys.modules, probe over UDP, then send one pre-auth SOAP request and look again.
_SCRIPT = r"""
import asyncio, io, json, socket, sys
from pathlib import Path

import aiohttp

from camio.app import CamioApp, Settings
from camio.core.config import DeviceConfig
from camio.store.config_store import ConfigStore

data_dir, udp_port = Path(sys.argv[1]), int(sys.argv[2])
BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"'
    ' xmlns:tds="http://www.onvif.org/ver10/device/wsdl">'
    "<env:Body><tds:GetSystemDateAndTime/></env:Body></env:Envelope>"
)
PROBE = (
    '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"'
    ' xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing"'
    ' xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"'
    ' xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><env:Header>'
    "<wsa:MessageID>urn:uuid:lazy-probe</wsa:MessageID></env:Header>"
    "<env:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></env:Body>"
    "</env:Envelope>"
).encode()


def onvif_modules():
    return sorted(
        name for name in sys.modules
        if name == "lxml" or name.startswith("lxml.") or name.startswith("camio.dialects.onvif.")
    )


async def main():
    data_dir.mkdir(parents=True, mode=0o700)
    doc = DeviceConfig().model_dump(mode="json")
    onvif = doc["dialects"]["onvif"]
    onvif.update(enabled=True, discovery=True, discovery_port=udp_port)
    onvif["discovery_interfaces"] = ["127.0.0.1"]
    ConfigStore(data_dir / "config.yaml", DeviceConfig).save(DeviceConfig.model_validate(doc))
    settings = Settings(data_dir=data_dir, host="127.0.0.1", port=0, https_off=True)
    app = CamioApp(settings, out=io.StringIO())
    await app.start()
    out = {}
    try:
        out["discovery_running"] = app.discovery is not None
        out["idle"] = onvif_modules()
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.bind(("127.0.0.1", 0))
            client.setblocking(False)
            client.sendto(PROBE, ("127.0.0.1", udp_port))
            reply = await asyncio.wait_for(loop.sock_recv(client, 65536), 5)
        out["probe_match"] = reply.decode()
        out["after_probe"] = onvif_modules()
        async with aiohttp.ClientSession() as session:
            async with session.post(
                app.url + "/onvif/device_service",
                data=BODY,
                headers={"Content-Type": "application/soap+xml"},
            ) as resp:
                out["status"] = resp.status
                out["body"] = await resp.text()
        out["after_request"] = onvif_modules()
    finally:
        await app.stop()
    print(json.dumps(out))


asyncio.run(main())
"""


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_idle_daemon_holds_no_lxml_until_an_onvif_request(tmp_path: Path) -> None:
    env = dict(os.environ, CAMIO_ADMIN_USER="admin", CAMIO_ADMIN_PASSWORD="admin-secret-1")
    run = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path / "data"), str(_free_udp_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["discovery_running"]
    light = ["camio.dialects.onvif.discovery", "camio.dialects.onvif.mount"]
    light.append("camio.dialects.onvif.scopes")
    # Idle, and after answering a WS-Discovery Probe: the light modules only.
    assert out["idle"] == light
    assert out["after_probe"] == light
    match = etree.fromstring(out["probe_match"].encode())
    assert match.findtext(".//{http://schemas.xmlsoap.org/ws/2004/08/addressing}RelatesTo") == (
        "urn:uuid:lazy-probe"
    )
    assert (match.findtext(f".//{{{D}}}XAddrs") or "").endswith("/onvif/device_service")
    # The first SOAP request loads the SOAP stack and the services, and is answered.
    assert out["status"] == 200, out["body"]
    body = etree.fromstring(out["body"].encode()).find(f"{{{ENV}}}Body")
    assert body is not None
    response = body.find(f"{{{TDS}}}GetSystemDateAndTimeResponse")
    assert response is not None, out["body"]
    assert response.find(f".//{{{TT}}}UTCDateTime/{{{TT}}}Date/{{{TT}}}Year") is not None
    loaded = set(out["after_request"])
    assert {"lxml", "lxml.etree", "camio.dialects.onvif.routes"} <= loaded
    assert {"camio.dialects.onvif.device_service", "camio.dialects.onvif.events"} <= loaded


def test_light_module_constants_match_the_soap_layer() -> None:
    assert common.DIALECT == mount.DIALECT == "onvif"
    assert mount.CONTENT_TYPE == soap.CONTENT_TYPE


async def test_a_post_to_no_registered_service_is_404(server: Server) -> None:
    raw = RawSoap(server.url)
    for path in ("/onvif/unknown", "/onvif/device_service/extra"):
        resp = await raw.post(path, envelope("<tds:GetSystemDateAndTime/>"))
        assert resp.status_code == 404, (path, resp.text)
    resp = await raw.post("/onvif/device_service", envelope("<tds:GetSystemDateAndTime/>"))
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(
    "data",
    [
        b'<!DOCTYPE x [<!ENTITY a "b">]>' + probe_message("urn:uuid:1"),
        probe_message("urn:uuid:1").replace(b"<env:Body>", b"<env:Body><!entity"),
        probe_message("urn:uuid:1").replace(b"urn:uuid:1", b"&undeclared;"),
        probe_message("urn:uuid:1").decode().encode("utf-16"),
        probe_message("urn:uuid:" + "x" * MAX_DATAGRAM),
        probe_message("urn:uuid:1").replace(b"<d:Probe/>", b"<x:Probe/>"),  # unbound prefix
        b"<a><b></a>",
        b"",
    ],
)
def test_discovery_parser_refuses(data: bytes) -> None:
    assert parse_datagram(data) is None


def test_discovery_parser_reads_a_probe() -> None:
    data = probe_message("urn:uuid:<&>", types="dn:NetworkVideoTransmitter", scopes_="a b")
    root = parse_datagram(data.replace(b"<d:Probe>", b"<d:Probe><!-- c -->"))
    assert root is not None
    probe = root.find((ENV, "Body"), (D, "Probe"))
    assert probe is not None
    types = probe.find((D, "Types"))
    assert types is not None and types.text == "dn:NetworkVideoTransmitter"
    assert types.nsmap["dn"] == "http://www.onvif.org/ver10/network/wsdl"
    message_id = root.find(
        (ENV, "Header"), ("http://schemas.xmlsoap.org/ws/2004/08/addressing", "MessageID")
    )
    assert message_id is not None and message_id.text == "urn:uuid:<&>"
