"""Power loss, simulated: ``camio run`` is SIGKILLed mid-activity and started again.

What must survive: the configuration (same revision, valid), the event log (everything that
was queryable before the kill; ids keep increasing), and an output configured to restore its
state resumes its running alarm time with the remaining time, never from the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from camio.core.config import DeviceConfig
from camio.store.config_store import ConfigStore
from daemonproc import Daemon, Starter

ACTIVATION_MS = 60_000


async def ok(daemon: Daemon, method: str, path: str, body: Any = None) -> Any:
    status, reply = await daemon.api(method, path, body)
    assert status < 300, (method, path, status, reply)
    return reply


async def make_some_events(daemon: Daemon) -> None:
    await ok(daemon, "PATCH", "/api/v1/ports/in1", {"debounce_on_ms": 0, "debounce_off_ms": 0})
    for state in ("closed", "open", "closed"):
        await ok(daemon, "POST", "/api/v1/sim/ports/in1/circuit", {"circuit": state})
    for number in (1, 2, 3):
        await ok(daemon, "PUT", f"/api/v1/virtual-inputs/{number}", {"active": True})
    await ok(daemon, "PUT", "/api/v1/triggers/manual", {"pulse": True})


async def kill9(daemon: Daemon) -> None:
    daemon.proc.send_signal(signal.SIGKILL)
    async with asyncio.timeout(10):
        assert await daemon.proc.wait() == -signal.SIGKILL


def temp_files(data: Path) -> list[str]:
    return sorted(p.name for p in data.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("power_on", ["restore", "off"])
async def test_sigkill_mid_activation(tmp_path: Path, daemons: Starter, power_on: str) -> None:
    data = tmp_path / "data"
    daemon = await daemons(data)
    patched = await ok(daemon, "PATCH", "/api/v1/ports/out1", {"power_on": power_on})
    assert patched["config"]["power_on"] == power_on
    await make_some_events(daemon)

    port = await ok(
        daemon, "PUT", "/api/v1/ports/out1/state", {"active": True, "duration_ms": ACTIVATION_MS}
    )
    started_at = time.monotonic()
    assert port["active"] is True
    remaining_before = port["remaining_ms"]
    assert 0 < remaining_before <= ACTIVATION_MS

    await ok(daemon, "PUT", "/api/v1/virtual-inputs/4", {"active": True})
    config_before = await ok(daemon, "GET", "/api/v1/config")
    seen = (await ok(daemon, "GET", "/api/v1/events?limit=1000"))["events"]
    assert len(seen) >= 12
    await kill9(daemon)

    again = await daemons(data)
    elapsed_ms = (time.monotonic() - started_at) * 1000

    # The configuration: intact, valid, same revision.
    config_after = await ok(again, "GET", "/api/v1/config")
    assert config_after == config_before
    doc, revision = ConfigStore(data / "config.yaml", DeviceConfig).load()
    assert revision == config_before["revision"]
    assert doc.model_dump(mode="json") == config_before["config"]

    # The event log: everything seen before the kill, unchanged; ids continue after it.
    events = (await ok(again, "GET", "/api/v1/events?limit=1000"))["events"]
    by_id = {e["id"]: e for e in events}
    for event in seen:
        assert by_id.get(event["id"]) == event
    newer = [e for e in events if e["id"] > seen[-1]["id"]]
    assert newer, "the restart logged new events"
    assert newer[0]["topic"] == "device/started" or any(
        e["topic"] == "device/started" for e in newer
    )
    ids = [e["id"] for e in events]
    assert ids == sorted(set(ids))
    assert not any(e["topic"] == "device/stopping" for e in events), "it never saw a stop"

    out = await ok(again, "GET", "/api/v1/ports/out1")
    if power_on == "restore":
        assert out["active"] is True
        assert out["cause"]["kind"] == "boot"
        assert out["cause"]["detail"] == "restore"
        remaining = out["remaining_ms"]
        assert 1 <= remaining < remaining_before
        assert remaining <= ACTIVATION_MS - elapsed_ms + 50
        assert remaining >= ACTIVATION_MS - elapsed_ms - 10_000
        restored = [e for e in newer if e["topic"] == "io/output" and e["source"] == "out1"]
        assert restored and restored[0]["cause"]["detail"] == "restore"
        assert restored[0]["data"]["active"] is True
    else:
        assert out["active"] is False
        assert out["remaining_ms"] is None
    assert await again.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["killed", "stopped"])
async def test_a_latched_output_is_restored(tmp_path: Path, daemons: Starter, sig: int) -> None:
    """A continuous (latched) activation of a 'restore' output comes back after a crash and
    after a clean stop alike; the clean stop drove it to its safe level meanwhile (logged as
    device/stopping)."""
    data = tmp_path / "data"
    daemon = await daemons(data)
    await ok(daemon, "PATCH", "/api/v1/ports/out1", {"power_on": "restore"})
    port = await ok(daemon, "PUT", "/api/v1/ports/out1/state", {"active": True})
    assert port["latched"] is True
    if sig == signal.SIGKILL:
        await kill9(daemon)
    else:
        assert await daemon.stop(sig) == 0

    again = await daemons(data)
    out = await ok(again, "GET", "/api/v1/ports/out1")
    assert out["active"] is True
    assert out["latched"] is True
    assert out["remaining_ms"] is None
    assert out["cause"]["kind"] == "boot"
    assert out["cause"]["detail"] == "restore"
    events = (await ok(again, "GET", "/api/v1/events?limit=1000"))["events"]
    stopping = [e for e in events if e["topic"] == "device/stopping"]
    assert len(stopping) == (1 if sig == signal.SIGINT else 0)
    assert await again.stop() == 0


async def test_sigkill_during_a_config_storm(tmp_path: Path, daemons: Starter) -> None:
    """Kill while configuration saves follow each other as fast as the API allows (several
    writers, so a save is in progress when the signal lands): the file is a valid document at
    an acknowledged revision (or one in flight), and no temporary file is left behind."""
    data = tmp_path / "data"
    daemon = await daemons(data)
    base = (await ok(daemon, "GET", "/api/v1/config"))["config"]
    acked: dict[int, str] = {}  # revision -> the device name that revision saved
    sent: set[str] = set()
    enough = asyncio.Event()

    async def writer(session: aiohttp.ClientSession, number: int) -> None:
        for index in range(10_000):
            name = f"writer {number} save {index}"
            doc = {**base, "device": {**base["device"], "name": name}}
            sent.add(name)
            async with session.put(daemon.url + "/api/v1/config", json={"config": doc}) as resp:
                assert resp.status == 200, await resp.text()
                acked[(await resp.json())["revision"]] = name
            if len(acked) >= 40:
                enough.set()

    headers = {"Authorization": f"Bearer {daemon.token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(writer(session, n)) for n in range(4)]
        async with asyncio.timeout(20):
            await enough.wait()
        await kill9(daemon)
        for task in tasks:
            with contextlib.suppress(aiohttp.ClientError):
                await task

    # Whether or not this kill landed inside an atomic write (it does now and then), plant
    # what such a kill leaves: half-written temporary files next to their targets.
    planted = [".config.yaml.k1ll3d.tmp", ".config.yaml.bak.k1ll3d.tmp", ".cli-token.k1ll3d.tmp"]
    for name in planted:
        (data / name).write_text("revision: 99\ndevice: {name: torn")

    again = await daemons(data)
    config = await ok(again, "GET", "/api/v1/config")
    revision = config["revision"]
    name = config["config"]["device"]["name"]
    assert max(acked) <= revision <= max(acked) + 4  # at most one save per writer in flight
    assert name in sent
    if revision in acked:
        assert acked[revision] == name
    assert config["config"] == {**base, "device": {**base["device"], "name": name}}
    _, on_disk = ConfigStore(data / "config.yaml", DeviceConfig).load()
    assert on_disk == revision
    assert temp_files(data) == []
    assert await again.stop() == 0
    assert temp_files(data) == []
