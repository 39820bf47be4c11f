"""The Foscam CGIProxy dialect against the real libpyfoscam 1.2.2 (``FoscamCamera``, as Home
Assistant's foscam integration uses it) and raw HTTP.

Each test runs its own daemon on loopback (plain HTTP, two simulated inputs, one relay). The
library is blocking (urllib), so its calls run in a thread. Nothing sleeps: waits are bounded
polls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from libpyfoscam import FoscamCamera
from vapix_helpers import ADMIN, OPERATOR, VIEWER, Server

from camio.core.ports import Circuit
from camio.dialects.foscam.ioalarm import RULE_ID, SCHEDULE_ID
from camio.engine.persistence import EventQuery

pytestmark = pytest.mark.asyncio

CGI = "/cgi-bin/CGIProxy.fcgi"
WEEKDAYS_8_TO_18 = sum(1 << slot for slot in range(16, 36))  # 08:00-18:00
ALL_DAY = (1 << 48) - 1


def enable(server: Server, *, plain_http: bool = True) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["dialects"]["foscam"]["enabled"] = True
        data["dialects"]["foscam"]["allow_plain_http"] = plain_http

    server.device.edit_config(edit)
    for port_id in ("in1", "in2"):
        server.device.patch_port(port_id, {"debounce_on_ms": 0, "debounce_off_ms": 0})


def camera(server: Server, user: str, password: str) -> FoscamCamera:
    return FoscamCamera(server.host, server.port, user, password, verbose=False)


async def call(cam: FoscamCamera, cmd: str, params: dict[str, Any] | None = None) -> Any:
    return await asyncio.to_thread(cam.execute_command, cmd, params)


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110  (a bounded poll of device state)
            await asyncio.sleep(0.01)


def relay(server: Server) -> str:
    return str(server.device.port_status("out1")["circuit"])


async def test_connect_like_home_assistant(server: Server) -> None:
    enable(server)
    cam = camera(server, *VIEWER)
    code, info = await asyncio.to_thread(cam.get_product_all_info)
    assert code == 0
    assert info["ioAlarmFlag"] == "1"
    code, dev = await asyncio.to_thread(cam.get_dev_info)
    assert code == 0
    ident = server.device.config.device
    assert dev["devName"] == ident.name
    assert dev["serialNo"] == server.serial
    assert dev["productName"] == ident.model
    assert len(dev["mac"]) == 12


async def test_polling_dev_state_sees_the_input(server: Server) -> None:
    enable(server)
    cam = camera(server, *VIEWER)

    async def io_alarm() -> str:
        code, state = await asyncio.to_thread(cam.get_dev_state)
        assert code == 0
        return str(state["IOAlarm"])

    assert await io_alarm() == "1"
    server.device.sim_set_circuit("in1", Circuit.CLOSED)
    async with asyncio.timeout(5):
        while await io_alarm() != "2":  # noqa: ASYNC110  (polling, as clients do)
            await asyncio.sleep(0.05)
    server.device.sim_set_circuit("in1", Circuit.OPEN)
    async with asyncio.timeout(5):
        while await io_alarm() != "1":  # noqa: ASYNC110  (polling, as clients do)
            await asyncio.sleep(0.05)
    code, _ = await call(camera(server, *ADMIN), "setIOAlarmConfig", {"isEnable": 0})
    assert code == 0
    assert await io_alarm() == "0"
    assert server.device.port_status("in1")["enabled"] is False


async def test_io_linkage_makes_the_relay_follow_and_clear_releases_it(server: Server) -> None:
    enable(server)
    admin = camera(server, *ADMIN)
    code, cfg = await call(admin, "getIOAlarmConfig")
    assert code == 0
    assert cfg["linkage"] == "0"
    assert cfg["alarmLevel"] == "0"  # in1 is normally open
    assert [cfg[f"schedule{d}"] for d in range(7)] == [str(ALL_DAY)] * 7
    cfg["linkage"] = "16"
    cfg["triggerInterval"] = "0"
    code, _ = await call(admin, "setIOAlarmConfig", cfg)
    assert code == 0
    rule = server.device.rule(RULE_ID)
    assert rule.action_mode == "while_active"
    code, cfg = await call(admin, "getIOAlarmConfig")
    assert cfg["linkage"] == "16"

    server.device.sim_set_circuit("in1", Circuit.CLOSED)
    await until(lambda: relay(server) == "closed")
    assert server.device.port_status("out1")["cause"]["rule"] == RULE_ID
    server.device.sim_set_circuit("in1", Circuit.OPEN)
    await until(lambda: relay(server) == "open")

    server.device.sim_set_circuit("in1", Circuit.CLOSED)
    await until(lambda: relay(server) == "closed")
    code, _ = await call(camera(server, *OPERATOR), "clearIOAlarmOutput")
    assert code == 0
    await until(lambda: relay(server) == "open")
    assert server.device.port_status("out1")["cause"]["user"] == OPERATOR[0]
    server.device.sim_set_circuit("in1", Circuit.OPEN)

    # Disabled in camio: linkage 0 to Foscam, and kept by a set without linkage.
    server.device.put_rule(
        {**server.device.rule(RULE_ID).model_dump(mode="json"), "enabled": False}
    )
    code, cfg = await call(admin, "getIOAlarmConfig")
    assert cfg["linkage"] == "0"
    code, _ = await call(admin, "setIOAlarmConfig", {"alarmLevel": 0})
    assert code == 0
    assert server.device.rule(RULE_ID).enabled is False
    code, _ = await call(admin, "setIOAlarmConfig", {"linkage": 0})
    assert code == 0
    assert all(r.id != RULE_ID for r in server.device.config.rules)
    server.device.sim_set_circuit("in1", Circuit.CLOSED)
    await asyncio.sleep(0.05)
    assert relay(server) == "open"


async def test_alarm_level_and_schedule_map_onto_the_input(server: Server) -> None:
    enable(server)
    admin = camera(server, *ADMIN)
    week = {f"schedule{d}": WEEKDAYS_8_TO_18 if d < 5 else 0 for d in range(7)}
    code, _ = await call(admin, "setIOAlarmConfig", {"alarmLevel": 1, **week})
    assert code == 0
    port = server.device.port_status("in1")
    assert port["normal_state"] == "closed"
    assert port["config"]["arming_schedule"] == SCHEDULE_ID
    assert len(server.device.schedule(SCHEDULE_ID).entries) == 1
    code, cfg = await call(admin, "getIOAlarmConfig")
    assert code == 0
    assert cfg["alarmLevel"] == "1"
    assert [int(cfg[f"schedule{d}"]) for d in range(7)] == list(week.values())
    # Back to all day: always armed, the dialect's schedule goes.
    code, _ = await call(admin, "setIOAlarmConfig", {f"schedule{d}": ALL_DAY for d in range(7)})
    assert code == 0
    assert server.device.port_status("in1")["config"]["arming_schedule"] is None
    assert all(s.id != SCHEDULE_ID for s in server.device.config.schedules)


async def test_unmappable_values_are_refused_with_result_codes(server: Server) -> None:
    enable(server)
    admin = camera(server, *ADMIN)
    revision = server.device.revision
    code, body = await call(admin, "setIOAlarmConfig", {f"schedule{d}": 0 for d in range(7)})
    assert code == -4
    assert "isEnable=0" in body["message"]
    code, body = await call(admin, "setIOAlarmConfig", {"linkage": 16 | 4})
    assert code == -4
    assert "snap picture" in body["message"]
    code, _ = await call(admin, "setIOAlarmConfig", {"alarmLevel": "high"})
    assert code == -1
    code, _ = await call(admin, "setIOAlarmConfig", {"schedule0": 1 << 48})
    assert code == -1
    assert server.device.revision == revision
    code, _ = await call(admin, "ptzMoveUp")
    assert code == -3


async def test_roles_and_wrong_password(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    enable(server)
    caplog.set_level(logging.DEBUG)
    code, body = await call(camera(server, ADMIN[0], "wrong-pass-123"), "getDevState")
    assert code == -2
    assert body == {"message": "wrong user name or password"}
    code, _ = await call(camera(server, "nobody", "x"), "getDevInfo")
    assert code == -2
    code, _ = await call(camera(server, *VIEWER), "setIOAlarmConfig", {"linkage": 16})
    assert code == -3
    code, _ = await call(camera(server, *VIEWER), "clearIOAlarmOutput")
    assert code == -3
    # The failure is audited like every other entry point's, and no password is anywhere.
    events = server.device.events(EventQuery(limit=500))
    failures = [e for e in events if e.topic == "audit/login_failed"]
    assert failures and failures[-1].data.get("realm") == "foscam"
    logged = caplog.text + repr([e.data for e in events])
    for secret in ("wrong-pass-123", ADMIN[1], VIEWER[1]):
        assert secret not in logged


async def test_plain_http_refused_unless_allowed(server: Server) -> None:
    enable(server, plain_http=False)
    code, body = await call(camera(server, *ADMIN), "getDevInfo")
    assert code == -3
    assert "plain HTTP" in body["message"]
    assert "devName" not in body


async def test_dialect_off_is_404(server: Server) -> None:
    client = server.client()
    resp = await client.get(CGI, params={"cmd": "getDevInfo", "usr": ADMIN[0], "pwd": ADMIN[1]})
    assert resp.status_code == 404
    code, _ = await call(camera(server, *ADMIN), "getDevInfo")
    assert code == -8  # libpyfoscam: unavailable


async def test_raw_answer_is_http_200_xml(server: Server) -> None:
    enable(server)
    client = server.client()
    resp = await client.get(CGI, params={"cmd": "getDevState", "usr": ADMIN[0], "pwd": "no"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/xml")
    assert "<result>-2</result>" in resp.text
    resp = await client.get(CGI + "?cmd=getDevState&usr=a&usr=b&pwd=x")
    assert resp.status_code == 200
    assert "<result>-1</result>" in resp.text
    assert isinstance(resp, httpx.Response)


async def test_tls_is_read_from_the_connection_not_from_headers() -> None:
    from unittest import mock

    from aiohttp.test_utils import make_mocked_request

    from camio.dialects.foscam.cgiproxy import over_tls

    plain = mock.Mock()
    plain.get_extra_info.side_effect = lambda name, default=None: None
    tls = mock.Mock()
    tls.get_extra_info.side_effect = lambda name, default=None: (
        object() if name == "ssl_object" else None
    )
    headers = {"X-Forwarded-Proto": "https", "Forwarded": "proto=https"}
    assert not over_tls(make_mocked_request("GET", CGI, headers=headers, transport=plain))
    assert over_tls(make_mocked_request("GET", CGI, transport=tls))
