"""The Dahua / Amcrest CGI dialect, against the real amcrest 1.9.9 client (sync and async).

Home Assistant builds ``AmcrestCamera(host, port, user, password).camera`` and calls the
library from a thread (sync) or the event loop (async); the server runs in this test's loop, so
the synchronous calls go through ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from typing import Any

import aiohttp
import pytest
from amcrest import LoginError
from dahua_helpers import basic_headers, camera, enable, subscribers, wait_for
from vapix_helpers import ADMIN, OPERATOR, VIEWER, Server

from camio.core.ports import Circuit

pytestmark = pytest.mark.asyncio


def _cmd(cam: Any, cmd: str) -> str:
    text: str = cam.command(cmd).content.decode()
    return text


# -- on / off, identity, auth ------------------------------------------------------------------


async def test_dialect_off_answers_404(server: Server) -> None:
    client = server.digest(*ADMIN)
    resp = await client.get("/cgi-bin/magicBox.cgi?action=getSerialNo")
    assert resp.status_code == 404
    enable(server)
    resp = await client.get("/cgi-bin/magicBox.cgi?action=getSerialNo")
    assert resp.status_code == 200
    assert resp.text == f"sn={server.serial}\r\n"
    assert resp.headers["Content-Type"].startswith("text/plain")


async def test_sync_connect_reads_identity(server: Server) -> None:
    enable(server)

    def connect() -> dict[str, Any]:
        cam = camera(server, *ADMIN)
        return {
            "serial": cam.serial_number,
            "type": cam.device_type,
            "name": cam.machine_name,
            "vendor": cam.vendor_information,
            "software": cam.software_information,
            "time": cam.current_time,
            "system": cam.system_information,
        }

    info = await asyncio.to_thread(connect)
    assert info["serial"] == server.serial
    assert info["type"] == server.device.config.device.model
    assert info["name"] == server.device.config.device.name
    assert info["vendor"] == "Dahua"
    # amcrest keeps the line ending on the build date (a library quirk, as on a camera).
    assert info["software"] == ("2.800.0000000.25.R", "2024-02-14\r\n")
    assert f"serialNumber={server.serial}\r\n" in info["system"]


async def test_async_connect_reads_identity(server: Server) -> None:
    enable(server)
    cam = camera(server, *ADMIN)
    assert await cam.async_serial_number == server.serial
    assert await cam.async_device_type == server.device.config.device.model
    assert await cam.async_vendor_information == "Dahua"
    await cam.async_current_time  # the online probe of Home Assistant


async def test_digest_only_still_lets_amcrest_in(server: Server) -> None:
    enable(server, allow_basic=False)
    basic = server.basic(*ADMIN)
    resp = await basic.get("/cgi-bin/magicBox.cgi?action=getMachineName")
    assert resp.status_code == 401
    assert f'realm="Login to {server.serial}"' in resp.headers["WWW-Authenticate"]
    cam = camera(server, *ADMIN)
    assert await asyncio.to_thread(lambda: cam.serial_number) == server.serial
    assert await camera(server, *ADMIN).async_serial_number == server.serial


async def test_wrong_password_is_refused(server: Server) -> None:
    enable(server)
    with pytest.raises(LoginError):
        await asyncio.to_thread(lambda: camera(server, ADMIN[0], "wrong").serial_number)
    with pytest.raises(LoginError):
        await camera(server, ADMIN[0], "wrong").async_serial_number


async def test_machine_name_with_error_word_does_not_break_login(server: Server) -> None:
    server.device.edit_config(lambda d: d["device"].update(name="Error lab"))
    enable(server)
    assert await camera(server, *ADMIN).async_serial_number == server.serial


# -- inputs and outputs ------------------------------------------------------------------------


async def test_sees_inputs_and_outputs(server: Server) -> None:
    enable(server)
    cam = camera(server, *VIEWER)
    assert await asyncio.to_thread(_cmd, cam, "alarm.cgi?action=getInSlots") == "result=2\r\n"
    assert await asyncio.to_thread(_cmd, cam, "alarm.cgi?action=getOutSlots") == "result=1\r\n"
    server.device.sim_set_circuit("in2", Circuit.CLOSED)
    await wait_for(lambda: server.device.inputs["in2"].active)
    resp = await cam.async_command("alarm.cgi?action=getInState")
    assert resp.text == "result=2\r\n"  # bit 1 = channel 1 = in2
    assert await cam.async_event_channels_happened("AlarmLocal") == [1]
    assert await cam.async_event_channels_happened("AlarmOutput") == []
    config = await cam.async_event_handler_config("Alarm")
    assert "table.Alarm[0].Name=Input 1\r\n" in config
    assert "table.Alarm[1].SensorType=NO\r\n" in config
    assert "table.Alarm[0].Enable=true\r\n" in config
    out = await asyncio.to_thread(lambda: cam.alarm_out_config)
    assert out == "table.AlarmOut[0].AlarmOutLatch=10\r\ntable.AlarmOut[0].Mode=0\r\n" + (
        "table.AlarmOut[0].Name=Relay 1\r\n"
    )


async def test_sync_switches_the_output_with_alarm_out_mode(server: Server) -> None:
    enable(server)
    cam = camera(server, *OPERATOR)
    out = server.device.outputs["out1"]
    text = await asyncio.to_thread(
        _cmd, cam, "configManager.cgi?action=setConfig&AlarmOut[0].Mode=1"
    )
    assert "ok" in text.lower() and text == "OK\r\n"
    assert out.active and out.circuit is Circuit.CLOSED
    assert out.cause.user == OPERATOR[0] and out.cause.detail == "dahua"
    assert await asyncio.to_thread(_cmd, cam, "alarm.cgi?action=getOutState") == "result=1\r\n"
    assert "table.AlarmOut[0].Mode=1\r\n" in await asyncio.to_thread(lambda: cam.alarm_out_config)
    await asyncio.to_thread(_cmd, cam, "configManager.cgi?action=setConfig&AlarmOut[0].Mode=0")
    assert not out.active and out.circuit is Circuit.OPEN
    await asyncio.to_thread(_cmd, cam, "configManager.cgi?action=setConfig&AlarmOut[0].Mode=2")
    assert not out.active
    assert "table.AlarmOut[0].Mode=2\r\n" in await asyncio.to_thread(lambda: cam.alarm_out_config)


async def test_async_switches_the_output(server: Server) -> None:
    enable(server)
    cam = camera(server, *OPERATOR)
    out = server.device.outputs["out1"]
    resp = await cam.async_command("configManager.cgi?action=setConfig&AlarmOut[0].Mode=1")
    assert "ok" in resp.text.lower()
    assert out.active and out.circuit is Circuit.CLOSED
    await cam.async_command("configManager.cgi?action=setConfig&AlarmOut[0].Mode=2")
    assert not out.active and out.circuit is Circuit.OPEN


async def test_a_stop_elsewhere_turns_force_on_back_to_auto(server: Server) -> None:
    enable(server)
    client = server.digest(*OPERATOR)
    await client.get("/cgi-bin/configManager.cgi?action=setConfig&AlarmOut[0].Mode=1")
    from camio.core.events import Cause

    server.device.set_output("out1", False, Cause("manual", user="someone"))
    resp = await client.get("/cgi-bin/configManager.cgi?action=getConfig&name=AlarmOut")
    assert "table.AlarmOut[0].Mode=0\r\n" in resp.text


async def test_set_config_maps_onto_port_configuration(server: Server) -> None:
    enable(server)
    client = server.digest(*ADMIN)
    query = (
        "action=setConfig&Alarm%5B1%5D.SensorType=NC&Alarm[1].Name=Back%20door"
        "&Alarm[1].EventHandler.Dejitter=2&Alarm[0].Enable=false"
        "&AlarmOut[0].AlarmOutLatch=30&AlarmOut[0].Name=Siren"
    )
    resp = await client.get(f"/cgi-bin/configManager.cgi?{query}")
    assert (resp.status_code, resp.text) == (200, "OK\r\n")
    in2 = server.device.inputs["in2"].config
    assert in2.normal_state == "closed" and in2.name == "Back door"
    assert (in2.debounce_on_ms, in2.debounce_off_ms) == (2000, 2000)
    assert not server.device.inputs["in1"].config.enabled
    out1 = server.device.outputs["out1"].config
    assert (out1.alarm_time_ms, out1.name) == (30_000, "Siren")
    # Writing back what getConfig shows changes nothing (the 50 ms debounce of in1 stays).
    revision = server.device.revision
    resp = await client.get(
        "/cgi-bin/configManager.cgi?action=setConfig&Alarm[0].EventHandler.Dejitter=0"
        "&Alarm[0].SensorType=NO"
    )
    assert resp.text == "OK\r\n" and server.device.revision == revision
    assert server.device.inputs["in1"].config.debounce_on_ms == 50


@pytest.mark.parametrize(
    "query",
    [
        "action=setConfig&Alarm[0].SensorType=NC&Alarm[0].SensorType=XX",
        "action=setConfig&Alarm[0].SensorType=NC&AlarmOut[0].Mode=3",
        "action=setConfig&Alarm[0].SensorType=NC&AlarmOut[5].Mode=1",
        "action=setConfig&Alarm[0].SensorType=NC&Alarm[0].Colour=red",
        "action=setConfig&Alarm[0].SensorType=NC&AlarmOut[0].Mode=1&Motion[0].Enable=true",
        "action=setConfig",
        "action=getConfig&name=Nothing",
        "action=reboot",
        "",
    ],
)
async def test_bad_requests_answer_error_and_change_nothing(server: Server, query: str) -> None:
    enable(server)
    client = server.digest(*ADMIN)
    revision = server.device.revision
    resp = await client.get(f"/cgi-bin/configManager.cgi?{query}")
    assert (resp.status_code, resp.text) == (400, "Error\r\nBad Request!\r\n")
    assert server.device.revision == revision
    assert server.device.inputs["in1"].config.normal_state == "open"
    assert not server.device.outputs["out1"].active


async def test_broken_amcrest_alarm_helpers_get_the_error_format(server: Server) -> None:
    enable(server)
    client = server.digest(*ADMIN)
    resp = await client.get("/cgi-bin/alarm.cgi?action=%7Balarm_name%7D")
    assert (resp.status_code, resp.text) == (400, "Error\r\nBad Request!\r\n")


async def test_roles(server: Server) -> None:
    enable(server)
    viewer, operator = server.digest(*VIEWER), server.digest(*OPERATOR)
    assert (await viewer.get("/cgi-bin/alarm.cgi?action=getOutState")).status_code == 200
    mode = "/cgi-bin/configManager.cgi?action=setConfig&AlarmOut[0].Mode=1"
    assert (await viewer.get(mode)).status_code == 403
    assert not server.device.outputs["out1"].active
    sensor = "/cgi-bin/configManager.cgi?action=setConfig&Alarm[0].SensorType=NC"
    assert (await operator.get(sensor)).status_code == 403
    assert server.device.inputs["in1"].config.normal_state == "open"


# -- the event stream --------------------------------------------------------------------------


async def test_raw_attach_stream_framing(server: Server) -> None:
    enable(server)
    auth = basic_headers(*VIEWER)
    url = f"{server.url}/cgi-bin/eventManager.cgi?action=attach&codes=[AlarmLocal,AlarmOutput]"
    before = subscribers(server)
    async with aiohttp.ClientSession(headers=auth) as session, session.get(url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=myboundary"
        assert "Transfer-Encoding" not in resp.headers
        await wait_for(lambda: subscribers(server) > before)
        server.device.sim_set_circuit("in1", Circuit.CLOSED)
        body = "Code=AlarmLocal;action=Start;index=0"
        expected = (
            "--myboundary\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}\r\n\r\n"
        ).encode()
        data = await asyncio.wait_for(resp.content.readexactly(len(expected)), 5)
        assert data == expected
        client = server.digest(*OPERATOR)
        await client.get("/cgi-bin/configManager.cgi?action=setConfig&AlarmOut[0].Mode=1")
        body = "Code=AlarmOutput;action=Start;index=0"
        data = await asyncio.wait_for(resp.content.readuntil(b"\r\n\r\n" + body.encode()), 5)
        assert data.startswith(b"--myboundary\r\n")
    await wait_for(lambda: subscribers(server) == before)


async def test_heartbeat_only_when_asked_and_active_ports_at_attach(server: Server) -> None:
    enable(server)
    server.device.sim_set_circuit("in2", Circuit.CLOSED)
    await wait_for(lambda: server.device.inputs["in2"].active)
    auth = basic_headers(*VIEWER)
    url = f"{server.url}/cgi-bin/eventManager.cgi?action=attach&codes=[All]&heartbeat=1"
    async with aiohttp.ClientSession(headers=auth) as session, session.get(url) as resp:
        data = await asyncio.wait_for(resp.content.readuntil(b"Heartbeat\r\n\r\n"), 5)
    assert b"Code=AlarmLocal;action=Start;index=1\r\n" in data
    assert b"index=0" not in data  # idle ports are not announced
    assert b"Content-Length: 9\r\n\r\nHeartbeat" in data


async def test_sync_event_stream_receives_input_changes(server: Server) -> None:
    enable(server)
    cam = camera(server, *VIEWER)
    received: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
    before = subscribers(server)

    def listen() -> None:
        for code, payload in cam.event_actions("AlarmLocal"):
            received.put((code, payload))
            if received.qsize() >= 2:
                break

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    await wait_for(lambda: subscribers(server) > before)
    server.device.sim_set_circuit("in2", Circuit.CLOSED)
    await wait_for(lambda: received.qsize() >= 1)
    server.device.sim_set_circuit("in2", Circuit.OPEN)
    await wait_for(lambda: received.qsize() >= 2)
    await asyncio.to_thread(thread.join, 5)
    assert received.get() == (
        "AlarmLocal",
        {"Code": "AlarmLocal", "action": "Start", "index": "1"},
    )
    assert received.get()[1]["action"] == "Stop"
    await wait_for(lambda: subscribers(server) == before)


async def test_async_event_stream_receives_input_changes(server: Server) -> None:
    enable(server)
    cam = camera(server, *VIEWER)
    received: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    before = subscribers(server)

    async def listen() -> None:
        async for item in cam.async_event_actions("AlarmLocal,AlarmOutput"):
            await received.put(item)

    task = asyncio.create_task(listen())
    try:
        await wait_for(lambda: subscribers(server) > before)
        server.device.sim_set_circuit("in1", Circuit.CLOSED)
        code, payload = await asyncio.wait_for(received.get(), 5)
        assert (code, payload["action"], payload["index"]) == ("AlarmLocal", "Start", "0")
        operator = camera(server, *OPERATOR)
        await operator.async_command("configManager.cgi?action=setConfig&AlarmOut[0].Mode=1")
        code, payload = await asyncio.wait_for(received.get(), 5)
        assert (code, payload["action"], payload["index"]) == ("AlarmOutput", "Start", "0")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await wait_for(lambda: subscribers(server) == before)


async def test_many_clients_connect_and_drop_without_leaks(server: Server) -> None:
    enable(server)
    before = subscribers(server)
    url = f"{server.url}/cgi-bin/eventManager.cgi?action=attach&codes=[AlarmLocal]"

    async def one_client(rounds: int) -> None:
        async with aiohttp.ClientSession(headers=basic_headers(*VIEWER)) as session:
            for _ in range(rounds):
                async with session.get(url) as resp:
                    assert resp.status == 200
                    await asyncio.sleep(0.05)

    async def digest_client(rounds: int) -> None:
        client = server.digest(*VIEWER)
        for _ in range(rounds):
            async with client.stream("GET", url) as resp:
                assert resp.status_code == 200
                await asyncio.sleep(0.05)

    def sync_client(rounds: int) -> None:
        # amcrest's synchronous reader, as HA's event thread runs it: read an event, drop.
        cam = camera(server, *VIEWER)
        for _ in range(rounds):
            stream = cam.event_stream("AlarmLocal")
            assert "Code=AlarmLocal" in next(stream)
            stream.close()

    stop = asyncio.Event()
    toggles = asyncio.create_task(_toggle(server, stop))
    try:
        await asyncio.gather(
            *(one_client(5) for _ in range(4)),
            *(digest_client(3) for _ in range(2)),
            asyncio.to_thread(sync_client, 3),
            asyncio.to_thread(sync_client, 3),
        )
    finally:
        stop.set()
        await toggles
    await wait_for(lambda: subscribers(server) == before)
    assert not server.app._runner.app[_streams_key()]  # type: ignore[union-attr]


async def _toggle(server: Server, stop: asyncio.Event) -> None:
    closed = False
    while not stop.is_set():
        closed = not closed
        server.device.sim_set_circuit("in1", Circuit.CLOSED if closed else Circuit.OPEN)
        await asyncio.sleep(0.1)


def _streams_key() -> Any:
    from camio.dialects.dahua.events import STREAMS

    return STREAMS
