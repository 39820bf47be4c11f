"""A real mosquitto on 127.0.0.1 for the MQTT tests, a test-side subscriber, and a device."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from camio.core.clock import SystemClock
from camio.core.config import DeviceConfig
from camio.engine.device import Device
from camio.engine.persistence import MemoryPersistence
from camio.hardware.sim import SimDriver
from camio.mqtt import MqttService

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
SERIAL = "CAMIOTEST01"
NODE = "camiotest01"
BASE = f"camio/{NODE}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_for(
    predicate: Callable[[], Any], limit_s: float = 5.0, what: str = "condition"
) -> None:
    """Poll real sockets' effects with a bounded wait (no sleeps for logic)."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@dataclass
class Broker:
    """``/usr/sbin/mosquitto -c <conf>`` on a free port; kill and restart at will."""

    folder: Path
    port: int
    extra: list[str] = field(default_factory=list)
    anonymous: bool = True
    proc: subprocess.Popen[bytes] | None = None

    def write_conf(self) -> Path:
        conf = self.folder / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'true' if self.anonymous else 'false'}",
            "persistence false",
            # As root, mosquitto would drop to its own user, who cannot read the test's
            # private temporary folder (password file, TLS key).
            *(["user root"] if os.geteuid() == 0 else []),
            "log_dest stderr",
            "log_type error",
            "max_queued_messages 100000",
            *self.extra,
        ]
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self) -> None:
        conf = self.write_conf()
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / "mosquitto.log").open("ab"),
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited: {(self.folder / 'mosquitto.log').read_text()}"
                )
            time.sleep(0.01)
        raise RuntimeError("mosquitto did not start listening")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, nothing persisted (retained messages are gone)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()


class Subscriber:
    """A test-side aiomqtt client that records every message it gets."""

    def __init__(self, port: int, filters: list[str], **kwargs: Any) -> None:
        self.port = port
        self.filters = filters
        self.kwargs = kwargs
        self.messages: list[aiomqtt.Message] = []
        self.client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def start(self) -> Subscriber:
        self.ready.clear()
        self._task = asyncio.get_running_loop().create_task(self._run())
        await asyncio.wait_for(self.ready.wait(), 5)
        return self

    async def _run(self) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port, **self.kwargs) as client:
            self.client = client
            await client.subscribe([(f, 1) for f in self.filters])
            self.ready.set()
            async for message in client.messages:
                self.messages.append(message)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._task
        self._task = None
        self.client = None

    def on(self, topic: str) -> list[aiomqtt.Message]:
        return [m for m in self.messages if m.topic.value == topic]

    def last(self, topic: str) -> bytes | None:
        found = self.on(topic)
        if not found:
            return None
        payload = found[-1].payload
        assert isinstance(payload, bytes)
        return payload

    def clear(self) -> None:
        self.messages.clear()


async def publish(port: int, topic: str, payload: str | bytes, **kwargs: Any) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.publish(topic, payload, qos=1, **kwargs)


def mqtt_config(port: int, **mqtt: Any) -> DeviceConfig:
    """A device with two inputs (no debounce), two outputs and MQTT on the test broker."""
    data: dict[str, Any] = {
        "device": {"serial": SERIAL, "name": "Test box", "model": "camio-sim"},
        "inputs": [
            {"id": "in1", "name": "Door", "debounce_on_ms": 0, "debounce_off_ms": 0},
            {"id": "in2", "name": "Hall PIR", "debounce_on_ms": 0, "debounce_off_ms": 0},
        ],
        "outputs": [
            {"id": "out1", "name": "Siren"},
            {"id": "out2", "name": "Light"},
        ],
        "mqtt": {"enabled": True, "host": "127.0.0.1", "port": port, **mqtt},
    }
    return DeviceConfig.model_validate(data)


def make_device(config: DeviceConfig) -> Device:
    device = Device(
        config, driver=SimDriver(), clock=SystemClock(), persistence=MemoryPersistence(100_000)
    )
    device.start()
    return device


async def start_service(device: Device, **kwargs: Any) -> MqttService:
    service = MqttService(device, rng=lambda: 0.0, **kwargs)
    service.start()
    await wait_for(lambda: service.state == "connected", what="the device to connect")
    return service
