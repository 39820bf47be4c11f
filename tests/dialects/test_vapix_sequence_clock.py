"""port.cgi's millisecond sequences run with the right timing: the real HTTP path into a device
on a manual clock, the relay's edges read from the simulated driver. Nothing sleeps."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

import camio.actions  # noqa: F401  (registers the action kinds)
from camio.api.app import build_api
from camio.api.auth import Authenticator
from camio.app import open_users
from camio.core.clock import NS_PER_MS, ManualClock
from camio.core.config import DeviceConfig
from camio.engine.device import Device
from camio.hardware.sim import SimDriver
from camio.store.users import Role

USER = ("operator", "a long operator secret")


@dataclass
class Rig:
    device: Device
    clock: ManualClock
    driver: SimDriver
    session: aiohttp.ClientSession
    base: str

    async def action(self, text: str) -> int:
        url = f"{self.base}/axis-cgi/io/port.cgi?action={quote(text, safe='')}"
        async with self.session.get(url) as resp:
            await resp.read()
            return resp.status

    def edges(self, port: str, since_ns: int) -> list[tuple[float, str]]:
        """(ms after ``since_ns``, level) of every level the relay was driven to."""
        return [
            ((t - since_ns) / NS_PER_MS, c.value)
            for t, c in self.driver.output_history[port]
            if t >= since_ns
        ]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    conn, users = open_users(tmp_path / "data")
    users.add(*USER, Role.OPERATOR)
    clock = ManualClock()
    driver = SimDriver()
    device = Device(DeviceConfig(), driver=driver, clock=clock)
    device.start()
    app = build_api(device, Authenticator(users, realm="camio"))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    token = base64.b64encode(":".join(USER).encode()).decode()
    session = aiohttp.ClientSession(headers={"Authorization": f"Basic {token}"})
    try:
        yield Rig(device, clock, driver, session, str(server.make_url("")).rstrip("/"))
    finally:
        await session.close()
        await server.close()
        device.stop()
        conn.close()


async def test_two_pulses_with_their_gaps(rig: Rig) -> None:
    # port 3 = the relay (inputs 1 and 2 come first in terminal order)
    t0 = rig.clock.monotonic_ns()
    assert await rig.action("3:/300\\500/300\\") == 200
    assert rig.edges("out1", t0) == [(0.0, "closed")]
    rig.clock.advance(299)
    assert rig.device.port_status("out1")["active"] is True
    rig.clock.advance(1)
    rig.clock.advance(500)
    rig.clock.advance(300)
    assert rig.edges("out1", t0) == [
        (0.0, "closed"),
        (300.0, "open"),
        (800.0, "closed"),
        (1100.0, "open"),
    ]
    assert rig.device.port_status("out1")["active"] is False


async def test_a_leading_wait_delays_the_first_change(rig: Rig) -> None:
    t0 = rig.clock.monotonic_ns()
    assert await rig.action("3:1000/") == 200
    rig.clock.advance(999)
    assert rig.edges("out1", t0) == []
    rig.clock.advance(1)
    assert rig.edges("out1", t0) == [(1000.0, "closed")]
    rig.clock.advance(60_000)
    assert rig.device.port_status("out1")["active"] is True  # the last state stays


async def test_a_new_action_replaces_a_running_sequence(rig: Rig) -> None:
    t0 = rig.clock.monotonic_ns()
    assert await rig.action("3:/5000\\") == 200
    rig.clock.advance(1000)
    assert await rig.action("3:\\") == 200
    rig.clock.advance(10_000)
    assert rig.edges("out1", t0) == [(0.0, "closed"), (1000.0, "open")]
