"""The VAPIX HTTP side against the real ``axis`` library (v60 on Python 3.11) and raw clients.

Each test runs its own daemon on loopback with the simulated terminal block (two inputs, one
relay). Nothing sleeps: waits are bounded polls of the device's state.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from axis.device import AxisDevice
from axis.models.configuration import Configuration
from vapix_helpers import ADMIN, OPERATOR, VIEWER, Server

from camio.core.ports import Circuit

pytestmark = pytest.mark.asyncio

PM = "/axis-cgi/io/portmanagement.cgi"


def axis_device(server: Server, client: httpx.AsyncClient, user: str, pw: str) -> AxisDevice:
    config = Configuration(client, server.host, port=server.port, username=user, password=pw)
    return AxisDevice(config)


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110  (a bounded poll of device state)
            await asyncio.sleep(0.01)


async def fast_inputs(server: Server) -> None:
    for port_id in ("in1", "in2"):
        server.device.patch_port(port_id, {"debounce_on_ms": 0, "debounce_off_ms": 0})


def relay_circuit(server: Server) -> str:
    return str(server.device.port_status("out1")["circuit"])


async def pm(client: httpx.AsyncClient, body: Any) -> httpx.Response:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return await client.post(PM, content=data, headers={"Content-Type": "application/json"})


# -- the axis library --------------------------------------------------------------------------


async def test_axis_library_initializes_and_switches_the_relay(server: Server) -> None:
    server.device.patch_port("in1", {"name": "Door contact"})
    async with httpx.AsyncClient() as session:
        dev = axis_device(server, session, *ADMIN)
        await dev.vapix.initialize()
        assert dev.vapix.serial_number == server.serial
        assert dev.vapix.product_number == "A9188"
        assert dev.vapix.product_type == "Network I/O Relay Module"
        ports = dev.vapix.ports
        assert {pid: p.name for pid, p in ports.items()} == {
            "0": "Door contact",
            "1": "Input 2",
            "2": "Relay 1",
        }
        assert [ports[i].direction for i in ("0", "1", "2")] == ["input", "input", "output"]
        assert ports["2"].normal_state == "open"
        await dev.vapix.ports.close("2")
        await until(lambda: relay_circuit(server) == "closed")
        assert server.device.port_status("out1")["active"] is True
        await dev.vapix.ports.open("2")
        await until(lambda: relay_circuit(server) == "open")


async def test_axis_library_reads_the_simulated_input_circuit(server: Server) -> None:
    await fast_inputs(server)
    server.device.sim_set_circuit("in2", Circuit.CLOSED)
    async with httpx.AsyncClient() as session:
        dev = axis_device(server, session, *VIEWER)
        await dev.vapix.initialize()
        assert dev.vapix.ports["1"].state == "closed"
        assert dev.vapix.ports["0"].state == "open"


async def test_wrong_password_lists_no_port(server: Server) -> None:
    async with httpx.AsyncClient() as session:
        dev = axis_device(server, session, ADMIN[0], "wrong")
        await dev.vapix.initialize()
        assert dev.vapix.serial_number == ""
        assert len(dev.vapix.ports) == 0
    async with httpx.AsyncClient(base_url=server.url) as raw:
        reply = await raw.post("/axis-cgi/apidiscovery.cgi", content="{}")
    assert reply.status_code == 401
    challenge = reply.headers["www-authenticate"]
    assert challenge.startswith(f'Digest realm="AXIS_{server.serial}"')
    assert "algorithm=MD5" in challenge and 'qop="auth"' in challenge


async def test_legacy_path_without_api_discovery(server: Server) -> None:
    """An older device: apidiscovery.cgi 404 -> param.cgi Properties/Brand/IOPort, port.cgi."""
    import axis.interfaces.api_discovery as api_discovery_module

    async with httpx.AsyncClient() as session:
        dev = axis_device(server, session, *ADMIN)

        async def missing(*args: Any, **kwargs: Any) -> bool:
            return False

        dev.vapix.api_discovery.update = missing  # type: ignore[method-assign]
        assert api_discovery_module  # the handler exists in this library version
        await dev.vapix.initialize()
        assert dev.vapix.serial_number == server.serial
        ports = dev.vapix.ports
        assert ports["2"].name == "Relay 1"
        await ports.close("2")
        await until(lambda: relay_circuit(server) == "closed")
        await ports.open("2")
        await until(lambda: relay_circuit(server) == "open")


# -- discovery and device info -----------------------------------------------------------------


async def test_discovery_lists_only_what_is_served(admin: httpx.AsyncClient) -> None:
    body = {"apiVersion": "1.0", "context": "c1", "method": "getApiList"}
    reply = await admin.post("/axis-cgi/apidiscovery.cgi", json=body)
    data = reply.json()
    assert data["context"] == "c1" and data["method"] == "getApiList"
    ids = {api["id"] for api in data["data"]["apiList"]}
    assert {"api-discovery", "basic-device-info", "io-port-management", "param-cgi"} <= ids
    assert ids <= {
        "api-discovery",
        "basic-device-info",
        "io-port-management",
        "param-cgi",
        "event-streaming-over-websocket",
    }
    info = await admin.post(
        "/axis-cgi/basicdeviceinfo.cgi",
        json={"apiVersion": "1.1", "context": "x", "method": "getAllProperties"},
    )
    props = info.json()["data"]["propertyList"]
    assert len(props) == 14 and props["Brand"] == "AXIS"
    versions = await admin.post(
        "/axis-cgi/basicdeviceinfo.cgi", json={"context": "v", "method": "getSupportedVersions"}
    )
    assert versions.json()["data"]["apiVersions"] == ["1.0", "1.1"]


# -- port management ---------------------------------------------------------------------------


async def test_set_ports_both_body_shapes(server: Server, operator: httpx.AsyncClient) -> None:
    spec_form = {
        "apiVersion": "1.0",
        "context": "a",
        "method": "setPorts",
        "params": {"ports": [{"port": "2", "state": "closed"}]},
    }
    reply = await pm(operator, spec_form)
    assert reply.json() == {
        "apiVersion": "1.0",
        "context": "a",
        "method": "setPorts",
        "data": {"ports": ["2"]},
    }
    assert relay_circuit(server) == "closed"
    bare = {**spec_form, "params": [{"port": "2", "state": "open"}]}
    assert (await pm(operator, bare)).json()["data"] == {"ports": ["2"]}
    assert relay_circuit(server) == "open"


async def test_set_ports_config_fields_need_admin(
    server: Server, operator: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    body = {
        "apiVersion": "1.0",
        "context": "a",
        "method": "setPorts",
        "params": {"ports": [{"port": "0", "name": "Front door", "normalState": "closed"}]},
    }
    assert (await pm(operator, body)).status_code == 403
    reply = await pm(admin, body)
    assert reply.json()["data"] == {"ports": ["0"]}
    status = server.device.port_status("in1")
    assert status["name"] == "Front door" and status["normal_state"] == "closed"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", 2101),
        ({"apiVersion": "1.0", "context": "e", "method": "explode"}, 2102),
        ({"apiVersion": "9.0", "context": "e", "method": "getPorts"}, 2100),
        ({"apiVersion": "1.0", "context": "e", "method": "setPorts"}, 2103),
        (
            {"apiVersion": "1.0", "context": "e", "method": "setPorts", "params": [{"port": "7"}]},
            2104,
        ),
        (
            {
                "apiVersion": "1.0",
                "context": "e",
                "method": "setPorts",
                "params": [{"port": "2", "state": "closed"}, {"port": "0", "state": "closed"}],
            },
            2104,
        ),
        (
            {
                "apiVersion": "1.0",
                "context": "e",
                "method": "setStateSequence",
                "params": {"port": "2", "sequence": [{"state": "closed", "time": -1}]},
            },
            2104,
        ),
    ],
)
async def test_port_management_errors_change_nothing(
    server: Server, admin: httpx.AsyncClient, body: Any, code: int
) -> None:
    revision = server.device.revision
    reply = await pm(admin, body)
    error = reply.json()["error"]
    assert error["code"] == code
    assert relay_circuit(server) == "open"
    assert server.device.revision == revision


async def test_huge_body_is_refused(server: Server, admin: httpx.AsyncClient) -> None:
    reply = await pm(admin, b"[" * 200_000)
    assert reply.status_code == 413
    assert relay_circuit(server) == "open"


async def test_set_state_sequence_runs(server: Server, operator: httpx.AsyncClient) -> None:
    body = {
        "apiVersion": "1.0",
        "context": "s",
        "method": "setStateSequence",
        "params": {
            "port": "2",
            "sequence": [{"state": "closed", "time": 100}, {"state": "open", "time": 0}],
        },
    }
    reply = await pm(operator, body)
    assert reply.json()["data"] == {"port": "2"}
    assert relay_circuit(server) == "closed"
    second = await pm(operator, body)
    assert second.json()["error"]["code"] == 2104
    await until(lambda: relay_circuit(server) == "open")


# -- param.cgi ---------------------------------------------------------------------------------


async def test_param_list_groups(admin: httpx.AsyncClient, server: Server) -> None:
    reply = await admin.post(
        "/axis-cgi/param.cgi",
        content="action=list&group=root.IOPort",
        headers={"Content-Type": "text/plain"},
    )
    lines = reply.text.splitlines()
    assert "root.IOPort.I0.Input.Name=Input 1" in lines
    assert "root.IOPort.I0.Input.Trig=closed" in lines
    assert "root.IOPort.I2.Output.Active=closed" in lines
    assert all(line.startswith("root.IOPort.") for line in lines)
    combined = await admin.get(
        "/axis-cgi/param.cgi",
        params={"action": "list", "group": "Input.NbrOfInputs,Output.NbrOfOutputs,Nope"},
    )
    assert combined.text == (
        "root.Input.NbrOfInputs=2\nroot.Output.NbrOfOutputs=1\n"
        "# Error: Error -1 getting param in group 'root.Nope'\n"
    )
    props = await admin.get("/axis-cgi/param.cgi", params={"action": "list", "group": "Properties"})
    assert f"root.Properties.System.SerialNumber={server.serial}" in props.text
    assert "Image.Format" not in props.text and "PTZ" not in props.text


async def test_param_update(
    server: Server, admin: httpx.AsyncClient, viewer: httpx.AsyncClient
) -> None:
    query = {"action": "update", "IOPort.I2.Output.Name": "Siren", "IOPort.I1.Input.Trig": "open"}
    assert (await viewer.get("/axis-cgi/param.cgi", params=query)).status_code == 403
    reply = await admin.get("/axis-cgi/param.cgi", params=query)
    assert reply.text == "OK\n"
    assert server.device.port_status("out1")["name"] == "Siren"
    assert server.device.port_status("in2")["normal_state"] == "closed"
    revision = server.device.revision
    bad = {"action": "update", "IOPort.I2.Output.Name": "Other", "IOPort.I0.Output.Active": "x"}
    reply = await admin.get("/axis-cgi/param.cgi", params=bad)
    assert reply.text.startswith("# Error:")
    assert server.device.port_status("out1")["name"] == "Siren"
    assert server.device.revision == revision


# -- port.cgi, input.cgi, output.cgi -----------------------------------------------------------


async def test_port_cgi_check_and_action(server: Server, operator: httpx.AsyncClient) -> None:
    await fast_inputs(server)
    server.device.sim_set_circuit("in1", Circuit.CLOSED)
    check = await operator.get("/axis-cgi/io/port.cgi?check=1,2,3")
    assert check.text == "port1=1\nport2=0\nport3=0\n"
    active = await operator.get("/axis-cgi/io/port.cgi?checkactive=1,3")
    assert active.text == "port1=active\nport3=inactive\n"
    direction = await operator.get("/axis-cgi/io/port.cgi?checkdirection=1,3")
    assert direction.text == "port1=input\nport3=output\n"
    on = await operator.get("/axis-cgi/io/port.cgi?action=3%3A%2F")
    assert on.status_code == 200 and on.text == ""
    assert relay_circuit(server) == "closed"
    off = await operator.get("/axis-cgi/io/port.cgi", params={"action": "3:\\"})
    assert off.status_code == 200
    assert relay_circuit(server) == "open"
    assert (await operator.get("/axis-cgi/io/output.cgi?check=1")).text == "output1=0\n"
    assert (await operator.get("/axis-cgi/io/input.cgi?check=1,2")).text == "input1=1\ninput2=0\n"


async def test_port_cgi_pulse_sequence(server: Server, operator: httpx.AsyncClient) -> None:
    reply = await operator.get("/axis-cgi/io/port.cgi", params={"action": "3:/100\\"})
    assert reply.status_code == 200
    assert relay_circuit(server) == "closed"
    await until(lambda: relay_circuit(server) == "open")


@pytest.mark.parametrize(
    "query",
    ["action=9:/", "action=1:/", "action=3:x", "action=3:", "check=0", "check=a", "bogus=1"],
)
async def test_port_cgi_bad_requests(server: Server, admin: httpx.AsyncClient, query: str) -> None:
    reply = await admin.get(f"/axis-cgi/io/port.cgi?{query}")
    assert reply.status_code == 400 and reply.text.startswith("# Error:")
    assert relay_circuit(server) == "open"


async def test_viewer_may_check_but_not_act(server: Server, viewer: httpx.AsyncClient) -> None:
    assert (await viewer.get("/axis-cgi/io/port.cgi?check=3")).status_code == 200
    assert (await viewer.get("/axis-cgi/io/port.cgi?action=3%3A%2F")).status_code == 403
    assert relay_circuit(server) == "open"


async def test_port_cgi_monitor_streams_changes(server: Server) -> None:
    await fast_inputs(server)
    client = server.digest(*VIEWER)
    async with client.stream("GET", "/axis-cgi/io/port.cgi?monitor=1,3") as resp:
        assert resp.headers["content-type"] == "multipart/x-mixed-replace; boundary=ioboundary"
        chunks = resp.aiter_text()
        server.device.sim_set_circuit("in1", Circuit.CLOSED)
        seen = ""
        async with asyncio.timeout(5):
            while "1I:/" not in seen:
                seen += await chunks.__anext__()
        assert "--ioboundary" in seen
        server.device.set_output("out1", True, cause=_cause())
        async with asyncio.timeout(5):
            while "3O:H" not in seen:
                seen += await chunks.__anext__()
    await until(lambda: not server.app._runner.app[_monitors()])  # type: ignore[union-attr]


def _cause() -> Any:
    from camio.core.events import Cause

    return Cause("manual", user="test")


def _monitors() -> Any:
    from camio.dialects.vapix.portcgi import MONITORS

    return MONITORS


# -- virtual inputs and manual trigger ---------------------------------------------------------


async def test_virtual_input_activate_and_deactivate(
    server: Server, operator: httpx.AsyncClient, viewer: httpx.AsyncClient
) -> None:
    url = "/axis-cgi/virtualinput/activate.cgi?schemaversion=1&port=10"
    assert (await viewer.get(url)).status_code == 403
    reply = await operator.get(url)
    assert reply.headers["content-type"].startswith("text/xml")
    assert "<ActivateSuccess><StateChanged>true</StateChanged></ActivateSuccess>" in reply.text
    assert server.device.virtual_input_status()[9]["active"] is True
    again = await operator.get(url)
    assert "<StateChanged>false</StateChanged>" in again.text
    off = await operator.get("/axis-cgi/virtualinput/deactivate.cgi?schemaversion=1&port=10")
    assert "<DeactivateSuccess><StateChanged>true" in off.text
    bad = await operator.get("/axis-cgi/virtualinput/activate.cgi?schemaversion=1&port=33")
    assert "<ErrorCode>20</ErrorCode>" in bad.text
    no_schema = await operator.get("/axis-cgi/virtualinput/activate.cgi?port=1")
    assert "<ErrorCode>10</ErrorCode>" in no_schema.text
    timed = await operator.get(
        "/axis-cgi/virtualinput/activate.cgi?schemaversion=1&port=2&duration=1"
    )
    assert "StateChanged>true" in timed.text
    await until(lambda: server.device.virtual_input_status()[1]["active"] is False, within=5)


async def test_manual_trigger_with_action_language(
    server: Server, operator: httpx.AsyncClient
) -> None:
    reply = await operator.get("/axis-cgi/io/virtualinput.cgi", params={"action": "6:/100\\"})
    assert reply.status_code == 200
    assert server.device.manual.active is True
    await until(lambda: server.device.manual.active is False)


# -- users -------------------------------------------------------------------------------------


async def test_pwdgrp_and_usergroup(admin: httpx.AsyncClient, viewer: httpx.AsyncClient) -> None:
    reply = await admin.post("/axis-cgi/pwdgrp.cgi", content="action=get")
    assert reply.text.splitlines() == [
        'admin="admin"',
        'operator="admin,oper"',
        'viewer="admin,oper,watcher"',
        'ptz="admin"',
    ]
    assert (await viewer.post("/axis-cgi/pwdgrp.cgi", content="action=get")).status_code == 403
    assert (await viewer.get("/axis-cgi/usergroup.cgi")).text == "watcher\nviewer\n"
    assert (await admin.get("/axis-cgi/usergroup.cgi")).text == (
        "admin\nadmin operator ptz viewer\n"
    )


# -- legacy camera-server files ----------------------------------------------------------------


async def test_input_txt_and_relay_files(server: Server, admin: httpx.AsyncClient) -> None:
    await fast_inputs(server)
    server.device.sim_set_circuit("in1", Circuit.CLOSED)
    server.device.sim_set_circuit("in1", Circuit.OPEN)
    server.device.sim_set_circuit("in1", Circuit.CLOSED)
    first = (await admin.get("/input.txt")).text.splitlines()
    assert len(first) == 2
    fields = first[0].split(" ")
    assert fields[:4] == ["input:1", "current:1", "last:0", "pulse:2"]
    assert fields[4].startswith("time_of_change:") and len(fields[4]) == len("time_of_change:") + 5
    assert first[1].startswith("input:2 current:0 last:0 pulse:0 time_of_change:")
    second = (await admin.get("/io/input.txt")).text.splitlines()
    assert second[0].split(" ")[:4] == ["input:1", "current:1", "last:1", "pulse:0"]
    on = await admin.get("/relayon.txt")
    assert on.text == "Relay is On\n" and relay_circuit(server) == "closed"
    off = await admin.get("/relayoff.txt")
    assert off.text == "Relay is Off\n" and relay_circuit(server) == "open"


async def test_legacy_files_need_admin_and_can_be_off(server: Server) -> None:
    assert (await server.digest(*OPERATOR).get("/relayon.txt")).status_code == 403
    assert (await server.client().get("/input.txt")).status_code == 401
    assert relay_circuit(server) == "open"
    server.device.edit_config(lambda d: d["dialects"]["vapix"].update(legacy_files=False))
    admin = server.digest(*ADMIN)
    assert (await admin.get("/relayon.txt")).status_code == 404
    assert (await admin.get("/axis-cgi/io/port.cgi?check=1")).status_code == 200


# -- auth and the on/off switch ----------------------------------------------------------------


async def test_basic_auth_follows_allow_basic(server: Server) -> None:
    basic = server.basic(*ADMIN)
    assert (await basic.get("/axis-cgi/io/port.cgi?check=1")).status_code == 200
    server.device.edit_config(lambda d: d["dialects"]["vapix"].update(allow_basic=False))
    reply = await basic.get("/axis-cgi/io/port.cgi?check=1")
    assert reply.status_code == 401
    assert [h for h in reply.headers.get_list("www-authenticate") if h.startswith("Basic")] == []


async def test_bare_requests_never_lock_out(server: Server) -> None:
    raw = server.client()
    for _ in range(30):
        assert (await raw.get("/axis-cgi/io/port.cgi?check=1")).status_code == 401
    admin = server.digest(*ADMIN)
    assert (await admin.get("/axis-cgi/io/port.cgi?check=1")).status_code == 200


async def test_dialect_off_answers_404_everywhere(server: Server) -> None:
    admin = server.digest(*ADMIN)
    server.device.edit_config(lambda d: d["dialects"]["vapix"].update(enabled=False))
    anonymous = server.client()
    for path in ("/axis-cgi/io/port.cgi?check=1", "/input.txt", "/axis-cgi/usergroup.cgi"):
        assert (await admin.get(path)).status_code == 404
        assert (await anonymous.get(path)).status_code == 404
    reply = await admin.post("/axis-cgi/apidiscovery.cgi", json={})
    assert reply.status_code == 404
    server.device.edit_config(lambda d: d["dialects"]["vapix"].update(enabled=True))
    assert (await admin.get("/axis-cgi/io/port.cgi?check=1")).status_code == 200
