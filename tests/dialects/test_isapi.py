"""The Hikvision ISAPI dialect against the real pyhik 0.4.8 (HikCamera, ISAPIClient) and raw
HTTP clients.

Each test runs its own daemon on loopback with the simulated terminal block (two inputs, one
relay) and turns the dialect on through Device.edit_config. pyhik is synchronous (requests):
it runs in worker threads while the daemon's loop serves it. Waits are bounded polls.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from pyhik import HikCamera, ISAPIAuthError, ISAPIClient
from requests.auth import HTTPDigestAuth
from vapix_helpers import ADMIN, OPERATOR, VIEWER, Server

from camio.core.ports import Circuit
from camio.dialects.isapi.alerts import STREAMS
from camio.dialects.isapi.identity import hik_identity

pytestmark = pytest.mark.asyncio

IO = "/ISAPI/System/IO"
STREAM = "/ISAPI/Event/notification/alertStream"
HIK_NS = "http://www.hikvision.com/ver20/XMLSchema"


def enable(server: Server, **settings: Any) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["dialects"]["isapi"].update(enabled=True, **settings)

    server.device.edit_config(edit)


@pytest.fixture
async def hik(server: Server) -> AsyncIterator[Server]:
    """The daemon with the ISAPI dialect on, quick inputs and a 1 s heartbeat."""
    enable(server, heartbeat_s=1)
    for port_id in ("in1", "in2"):
        server.device.patch_port(port_id, {"debounce_on_ms": 0, "debounce_off_ms": 0})
    yield server


async def until(predicate: Callable[[], bool], within: float = 8.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110  (a bounded poll of state)
            await asyncio.sleep(0.02)


def relay(server: Server) -> str:
    return str(server.device.port_status("out1")["circuit"])


def xml_value(body: str, tag: str) -> str:
    found = re.search(rf"<{tag}>([^<]*)</{tag}>", body)
    assert found, (tag, body)
    return found.group(1)


async def camera(server: Server, user: str, password: str) -> HikCamera:
    return await asyncio.to_thread(HikCamera, f"http://{server.host}", server.port, user, password)


# -- pyhik HikCamera (what Home Assistant's hikvision integration uses) -------------------------


async def test_hikcamera_connects_and_sees_the_inputs_as_sensors(hik: Server) -> None:
    hik.device.patch_port("in1", {"name": "Door contact"})
    cam = await camera(hik, *VIEWER)
    identity = hik_identity(hik.device.config.device)
    assert cam.get_id == identity.device_id and len(cam.get_id) > 10
    assert cam.get_name == "camio"
    sensors = cam.current_event_states
    assert [entry[1] for entry in sensors["I/O"]] == [1, 2]
    assert [entry[0] for entry in sensors["I/O"]] == [False, False]
    assert cam.get_type == "NVR"  # pyhik's rule: any channel above 1 (two inputs)
    # A disabled input keeps its id but notifies nobody: no sensor for it.
    hik.device.patch_port("in1", {"enabled": False})
    cam2 = await camera(hik, *VIEWER)
    assert [entry[1] for entry in cam2.current_event_states["I/O"]] == [2]
    assert cam2.get_id == cam.get_id  # stable across connections


async def test_hikcamera_falls_back_to_digest_when_basic_is_off(hik: Server) -> None:
    enable(hik, allow_basic=False)
    cam = await camera(hik, *ADMIN)
    assert cam.get_id == hik_identity(hik.device.config.device).device_id
    assert isinstance(cam.hik_request.auth, HTTPDigestAuth)


async def test_hikcamera_receives_input_changes_in_real_time(hik: Server) -> None:
    enable(hik, allow_basic=False, heartbeat_s=1)
    cam = await camera(hik, *VIEWER)
    seen: list[str] = []
    changed = threading.Event()

    def callback(msg: str) -> None:
        seen.append(msg)
        changed.set()

    sensor = f"{cam.get_id}.I/O.2"
    cam.add_update_callback(callback, sensor)
    baseline = hik.device.bus.subscriber_count
    cam.start_stream()
    try:
        await until(lambda: cam.stream_connected)
        await asyncio.sleep(0.2)  # pyhik calls every callback once on connecting
        seen.clear()
        started = time.monotonic()
        hik.device.sim_set_circuit("in2", Circuit.CLOSED)
        await until(lambda: cam.fetch_attributes("I/O", 2)[0] is True, within=3)
        assert time.monotonic() - started < 1.5  # pushed at once, not on the next heartbeat
        assert seen == [sensor]
        assert cam.fetch_attributes("I/O", 1)[0] is False
        # Re-sent while active (activePostCount grows): pyhik's 5 s stale reset never fires.
        await until(lambda: cam.fetch_attributes("I/O", 2)[2] >= 3, within=5)
        await asyncio.sleep(5.5)
        assert cam.fetch_attributes("I/O", 2)[0] is True
        hik.device.sim_set_circuit("in2", Circuit.OPEN)
        await until(lambda: cam.fetch_attributes("I/O", 2)[0] is False, within=3)
        assert seen.count(sensor) >= 2
    finally:
        await asyncio.to_thread(cam.disconnect)
    await until(lambda: hik.device.bus.subscriber_count == baseline)


async def test_wrong_password_is_refused(hik: Server) -> None:
    cam = await camera(hik, ADMIN[0], "not the password")
    assert cam.get_id is None
    client = ISAPIClient(hik.host, hik.port, ADMIN[0], "not the password")
    with pytest.raises(ISAPIAuthError):
        await asyncio.to_thread(client.get_input_ports)
    async with httpx.AsyncClient(base_url=hik.url) as raw:
        reply = await raw.get("/ISAPI/System/deviceInfo")
    assert reply.status_code == 401
    challenges = reply.headers.get_list("www-authenticate")
    realm = hik_identity(hik.device.config.device).realm
    assert realm == f"IP Camera({hik.serial[-5:]})"
    assert challenges[0].startswith(f'Digest realm="{realm}"')
    assert 'qop="auth"' in challenges[0] and "algorithm=MD5" in challenges[0]
    assert any(c.startswith("Basic") for c in challenges)
    enable(hik, allow_basic=False)
    async with httpx.AsyncClient(base_url=hik.url, auth=httpx.BasicAuth(*ADMIN)) as basic:
        assert (await basic.get("/ISAPI/System/deviceInfo")).status_code == 401


async def test_dialect_off_answers_404(server: Server, admin: httpx.AsyncClient) -> None:
    assert server.device.config.dialects.isapi.enabled is False  # off by default
    for path in ("/ISAPI/System/deviceInfo", f"{IO}/inputs", STREAM):
        reply = await admin.get(path)
        assert reply.status_code == 404, path
        assert "www-authenticate" not in reply.headers
    enable(server)
    assert (await admin.get("/ISAPI/System/deviceInfo")).status_code == 200


# -- pyhik ISAPIClient ---------------------------------------------------------------------------


async def test_isapi_client_lists_ports_and_switches_the_relay(hik: Server) -> None:
    hik.device.patch_port("in1", {"name": "Door contact"})
    client = ISAPIClient(hik.host, hik.port, *OPERATOR)
    try:
        info = await asyncio.to_thread(client.get_device_info)
        assert info["serialNumber"].endswith(hik.serial)
        assert info["model"] == "DS-2CD2646G2-IZS" and info["deviceType"] == "IPCamera"
        inputs = await asyncio.to_thread(client.get_input_ports)
        assert [(p.id, p.name) for p in inputs] == [("1", "Door contact"), ("2", "Input 2")]
        outputs = await asyncio.to_thread(client.get_output_ports)
        assert [(p.id, p.name) for p in outputs] == [("1", "Relay 1")]
        assert await asyncio.to_thread(client.get_output_state, "1") is False
        await asyncio.to_thread(client.set_output_state, "1", True)
        await until(lambda: relay(hik) == "closed")
        assert await asyncio.to_thread(client.get_output_state, "1") is True
        await asyncio.to_thread(client.set_output_state, "1", False)
        await until(lambda: relay(hik) == "open")
        assert await asyncio.to_thread(client.get_output_state, "1") is False
    finally:
        client.close()


async def test_viewer_cannot_switch_the_relay(hik: Server) -> None:
    client = ISAPIClient(hik.host, hik.port, *VIEWER)
    try:
        with pytest.raises(ISAPIAuthError):
            await asyncio.to_thread(client.set_output_state, "1", True)
    finally:
        client.close()
    assert relay(hik) == "open"


# -- raw REST resources --------------------------------------------------------------------------


async def test_device_info_and_triggers_documents(hik: Server) -> None:
    viewer = hik.digest(*VIEWER)
    reply = await viewer.get("/ISAPI/System/deviceInfo")
    assert reply.headers["content-type"] == 'application/xml; charset="UTF-8"'
    body = reply.text
    assert f'<DeviceInfo xmlns="{HIK_NS}" version="2.0">' in body
    assert xml_value(body, "deviceID") == hik_identity(hik.device.config.device).device_id
    reply = await viewer.get("/ISAPI/Event/triggers")
    body = reply.text
    assert re.findall(r"<id>(IO-\d)</id>", body) == ["IO-1", "IO-2"]
    assert re.findall(r"<inputIOPortID>(\d)</inputIOPortID>", body) == ["1", "2"]
    assert body.count("<notificationMethod>center</notificationMethod>") == 2


async def test_status_follows_the_simulated_circuit(hik: Server) -> None:
    viewer = hik.digest(*VIEWER)
    hik.device.sim_set_circuit("in1", Circuit.CLOSED)
    await until(lambda: bool(hik.device.port_status("in1")["active"]))
    body = (await viewer.get(f"{IO}/inputs/1/status")).text
    assert xml_value(body, "ioPortID") == "1" and xml_value(body, "ioPortType") == "input"
    assert xml_value(body, "ioState") == "active"
    assert xml_value((await viewer.get(f"{IO}/inputs/2/status")).text, "ioState") == "inactive"
    listing = (await viewer.get(f"{IO}/status")).text
    assert re.findall(r"<ioPortType>(\w+)</ioPortType>", listing) == ["input", "input", "output"]
    assert re.findall(r"<ioState>(\w+)</ioState>", listing) == ["active", "inactive", "inactive"]
    missing = await viewer.get(f"{IO}/inputs/3/status")
    assert missing.status_code == 404
    assert xml_value(missing.text, "subStatusCode") == "invalidID"
    assert xml_value(missing.text, "requestURL") == f"{IO}/inputs/3/status"


async def test_input_configuration_round_trip(hik: Server) -> None:
    admin = hik.digest(*ADMIN)
    body = (await admin.get(f"{IO}/inputs/2")).text
    assert xml_value(body, "triggering") == "low" and xml_value(body, "enabled") == "true"
    changed = body.replace("<triggering>low</triggering>", "<triggering>high</triggering>")
    changed = changed.replace("<inputName>Input 2</inputName>", "<inputName>Window</inputName>")
    reply = await admin.put(f"{IO}/inputs/2", content=changed)
    assert reply.status_code == 200, reply.text
    assert xml_value(reply.text, "statusCode") == "1"
    config = hik.device.input("in2").config
    assert (config.normal_state, config.name) == ("closed", "Window")
    # NC and the circuit still open: the input is now active.
    await until(lambda: bool(hik.device.port_status("in2")["active"]))
    assert xml_value((await admin.get(f"{IO}/inputs/2")).text, "triggering") == "high"


async def test_output_configuration_round_trip(hik: Server) -> None:
    admin = hik.digest(*ADMIN)
    body = (await admin.get(f"{IO}/outputs/1")).text
    assert xml_value(body, "defaultState") == "low"
    assert xml_value(body, "outputState") == "high"
    assert xml_value(body, "pulseDuration") == "10000"
    doc = (
        '<IOOutputPort version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">'
        "<id>1</id><PowerOnState><defaultState>high</defaultState>"
        "<outputState>low</outputState><pulseDuration>5000</pulseDuration></PowerOnState>"
        "</IOOutputPort>"
    )
    reply = await admin.put(f"{IO}/outputs/1", content=doc)
    assert reply.status_code == 200, reply.text
    config = hik.device.output("out1").config
    assert (config.power_on.value, config.active_state, config.alarm_time_ms) == (
        "on",
        "open",
        5000,
    )
    # restore reads as low; writing the document back keeps restore.
    hik.device.patch_port("out1", {"power_on": "restore"})
    body = (await admin.get(f"{IO}/outputs/1")).text
    assert xml_value(body, "defaultState") == "low"
    assert (await admin.put(f"{IO}/outputs/1", content=body)).status_code == 200
    assert hik.device.output("out1").config.power_on.value == "restore"
    pulse = body.replace("<outputState>low</outputState>", "<outputState>pulse</outputState>")
    assert (await admin.put(f"{IO}/outputs/1", content=pulse)).status_code == 200
    assert hik.device.output("out1").config.mode.value == "pulse"


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "sub"),
    [
        (
            f"{IO}/inputs/1",
            "<IOInputPort><triggering>up</triggering></IOInputPort>",
            400,
            6,
            "badParameters",
        ),
        (f"{IO}/inputs/1", "<IOInputPort><id>2</id></IOInputPort>", 400, 6, "badParameters"),
        (f"{IO}/inputs/1", "<IOInputPort><enabled>yes</enabled>", 400, 5, "badXmlFormat"),
        (f"{IO}/inputs/1", "", 400, 5, "badXmlFormat"),
        (f"{IO}/inputs/1", "<IOOutputPort/>", 400, 6, "badXmlContent"),
        (
            f"{IO}/inputs/1",
            '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            "<IOInputPort><inputName>&b;</inputName></IOInputPort>",
            400,
            5,
            "badXmlFormat",
        ),
        (
            f"{IO}/inputs/1",
            '<!DOCTYPE x SYSTEM "http://127.0.0.1:9/x.dtd"><IOInputPort/>',
            400,
            5,
            "badXmlFormat",
        ),
        (
            f"{IO}/outputs/1",
            "<IOOutputPort><PowerOnState><pulseDuration>-1</pulseDuration>"
            "</PowerOnState></IOOutputPort>",
            400,
            6,
            "badParameters",
        ),
        (
            f"{IO}/outputs/1",
            "<IOOutputPort><outputName></outputName></IOOutputPort>",
            400,
            6,
            "badParameters",
        ),
        (
            f"{IO}/outputs/1/trigger",
            "<IOPortData><outputState>on</outputState></IOPortData>",
            400,
            6,
            "badParameters",
        ),
        (f"{IO}/outputs/1/trigger", "<IOPortData/>", 400, 6, "badParameters"),
        (
            f"{IO}/outputs/2/trigger",
            "<IOPortData><outputState>high</outputState></IOPortData>",
            404,
            6,
            "invalidID",
        ),
        (
            f"{IO}/inputs/1",
            "<IOInputPort>" + "x" * 70_000 + "</IOInputPort>",
            413,
            5,
            "badXmlFormat",
        ),
    ],
)
async def test_bad_requests_change_nothing(
    hik: Server, path: str, body: str, status: int, code: int, sub: str
) -> None:
    admin = hik.digest(*ADMIN)
    revision = hik.device.revision
    before = hik.device.config.model_dump()
    reply = await admin.put(path, content=body)
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == 'application/xml; charset="UTF-8"'
    assert xml_value(reply.text, "statusCode") == str(code)
    assert xml_value(reply.text, "subStatusCode") == sub
    assert hik.device.revision == revision
    assert hik.device.config.model_dump() == before
    assert relay(hik) == "open"


async def test_roles_are_refused_as_response_status(hik: Server) -> None:
    viewer, operator = hik.digest(*VIEWER), hik.digest(*OPERATOR)
    trigger = "<IOPortData><outputState>high</outputState></IOPortData>"
    reply = await viewer.put(f"{IO}/outputs/1/trigger", content=trigger)
    assert reply.status_code == 403
    assert xml_value(reply.text, "subStatusCode") == "lowPrivilege"
    reply = await operator.put(f"{IO}/inputs/1", content="<IOInputPort/>")
    assert reply.status_code == 403
    assert (await operator.put(f"{IO}/outputs/1/trigger", content=trigger)).status_code == 200
    await until(lambda: relay(hik) == "closed")


# -- the alertStream ----------------------------------------------------------------------------


class Parts:
    """Reads an alertStream: raw chunks in, (headers, xml) parts out."""

    def __init__(self, response: httpx.Response) -> None:
        self._chunks = response.aiter_raw()
        self._buffer = b""

    async def next(self) -> tuple[str, str]:
        while True:
            match = re.search(rb"--boundary\r\n(.*?)\r\n\r\n", self._buffer, flags=re.DOTALL)
            if match:
                head = match.group(1).decode()
                length = int(re.search(r"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
                end = match.end() + length + 2
                if len(self._buffer) >= end:
                    body = self._buffer[match.end() : end - 2].decode()
                    assert self._buffer[end - 2 : end] == b"\r\n"
                    self._buffer = self._buffer[end:]
                    return head, body
            self._buffer += await self._chunks.__anext__()

    async def until(self, predicate: Callable[[str], bool], within: float = 5.0) -> str:
        async with asyncio.timeout(within):
            while True:
                _, body = await self.next()
                if predicate(body):
                    return body


async def test_alert_stream_format_repeat_inactive_and_heartbeat(hik: Server) -> None:
    enable(hik, alert_repeat_ms=200, heartbeat_s=1)
    viewer = hik.digest(*VIEWER)
    async with viewer.stream("GET", STREAM) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "multipart/mixed; boundary=boundary"
        assert response.headers["transfer-encoding"] == "chunked"
        parts = Parts(response)
        head, body = await parts.next()  # nothing happens: the videoloss keep-alive
        assert head == 'Content-Type: application/xml; charset="UTF-8"\r\nContent-Length: ' + str(
            len(body.encode())
        )
        assert xml_value(body, "eventType") == "videoloss"
        assert xml_value(body, "eventState") == "inactive"
        lines = body.split("\r\n")
        assert lines[0] == f'<EventNotificationAlert version="2.0" xmlns="{HIK_NS}">'
        assert lines[-1] == "</EventNotificationAlert>"
        hik.device.sim_set_circuit("in2", Circuit.CLOSED)
        body = await parts.until(lambda b: "<eventType>IO</eventType>" in b)
        assert xml_value(body, "eventState") == "active"
        assert xml_value(body, "inputIOPortID") == "2"
        assert xml_value(body, "activePostCount") == "1"
        assert "<channelID>" not in body
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", xml_value(body, "dateTime"))
        body = await parts.until(lambda b: "<eventType>IO</eventType>" in b)
        assert xml_value(body, "activePostCount") == "2"  # re-sent while active
        hik.device.sim_set_circuit("in2", Circuit.OPEN)
        body = await parts.until(lambda b: "<eventState>inactive</eventState>" in b)
        assert xml_value(body, "eventType") == "IO"
        assert xml_value(body, "inputIOPortID") == "2"


async def test_alert_stream_starts_with_current_alarms(hik: Server) -> None:
    hik.device.sim_set_circuit("in1", Circuit.CLOSED)
    await until(lambda: bool(hik.device.port_status("in1")["active"]))
    async with hik.digest(*VIEWER).stream("GET", STREAM) as response:
        _, body = await Parts(response).next()
    assert xml_value(body, "eventType") == "IO"
    assert xml_value(body, "inputIOPortID") == "1"
    assert xml_value(body, "eventState") == "active"


async def test_alert_stream_ends_when_the_dialect_is_turned_off(hik: Server) -> None:
    baseline = hik.device.bus.subscriber_count
    async with hik.digest(*VIEWER).stream("GET", STREAM) as response:
        await until(lambda: hik.device.bus.subscriber_count == baseline + 1)

        def edit(data: dict[str, Any]) -> None:
            data["dialects"]["isapi"]["enabled"] = False

        hik.device.edit_config(edit)
        async with asyncio.timeout(5):
            async for _ in response.aiter_raw():
                pass
    await until(lambda: hik.device.bus.subscriber_count == baseline)


async def test_concurrent_streams_connect_and_drop_without_leaks(hik: Server) -> None:
    enable(hik, alert_repeat_ms=100, heartbeat_s=1)
    hik.device.sim_set_circuit("in1", Circuit.CLOSED)  # in alarm: every stream gets parts
    await until(lambda: bool(hik.device.port_status("in1")["active"]))
    baseline = hik.device.bus.subscriber_count
    clients = [hik.digest(*VIEWER) for _ in range(4)]

    async def one(client: httpx.AsyncClient, n: int) -> None:
        async with client.stream("GET", STREAM) as response:
            assert response.status_code == 200
            if n % 2:  # read a few alerts; the others drop before reading anything
                parts = Parts(response)
                for _ in range(1 + n):
                    await parts.until(lambda b: "<eventType>IO</eventType>" in b)

    for round_ in range(6):
        tasks = [asyncio.create_task(one(c, n)) for n, c in enumerate(clients)]
        hik.device.sim_set_circuit("in2", Circuit.CLOSED if round_ % 2 == 0 else Circuit.OPEN)
        async with asyncio.timeout(10):
            await asyncio.gather(*tasks)
    await until(lambda: hik.device.bus.subscriber_count == baseline, within=5)
    assert not hik.app._runner.app[STREAMS]  # type: ignore[union-attr]
