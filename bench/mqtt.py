"""Input change to MQTT message: the delay from an input edge to the message a subscriber on
the same broker receives, at 1,000 changes per second.

A real mosquitto runs on 127.0.0.1 (a free port). The device runs in this process with the
simulator and its MQTT client (QoS 1, the defaults: every change publishes the retained
``input/<id>`` ON/OFF, its JSON ``/state`` and the event on ``event/io/input``). The
subscriber is another process (``python -m bench.mqtt subscribe``, paho-mqtt in its own
thread) so that its work does not share the device's event loop. It timestamps each event
message on arrival with ``time.monotonic_ns()`` (the system-wide monotonic clock, the same one
the device stamps the edge with: the event's ``mono_ns``).

Changes are driven by ``Device.sim_set_circuit`` on loop timers 1 ms apart (no drift), for
``SECONDS`` seconds after a warm-up; the figure is p50/p99 of (arrival - edge) over the
measured changes, and every change must arrive.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RATE = 1000
WARMUP = 500
SECONDS = 5
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_broker(folder: Path, port: int) -> subprocess.Popen[bytes]:
    conf = folder / "mosquitto.conf"
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true", "persistence false"]
    if os.geteuid() == 0:
        lines.append("user root")
    conf.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError("mosquitto did not start")


def subscribe(port: int, topic: str, expected: int) -> None:
    """The subscriber process: prints one line "ready", then the delays (JSON) at the end."""
    import threading

    import paho.mqtt.client as paho

    delays: list[int] = []
    done = threading.Event()

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        now = time.monotonic_ns()
        mono = json.loads(message.payload)["mono_ns"]
        delays.append(now - mono)
        if len(delays) >= expected:
            done.set()

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-subscriber")
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    time.sleep(0.3)  # the SUBACK is in well before the device starts
    print("ready", flush=True)
    done.wait(SECONDS + 30)
    client.loop_stop()
    print(json.dumps(delays), flush=True)


async def _drive(port: int, sub: subprocess.Popen[str]) -> dict[str, Any]:
    from camio.core.clock import SystemClock
    from camio.core.config import DeviceConfig
    from camio.core.ports import Circuit
    from camio.engine.device import Device
    from camio.engine.persistence import MemoryPersistence
    from camio.hardware.sim import SimDriver
    from camio.mqtt import MqttService

    config = DeviceConfig.model_validate(
        {
            "device": {"serial": "BENCH1"},
            "inputs": [{"id": "in1", "name": "In", "debounce_on_ms": 0, "debounce_off_ms": 0}],
            "mqtt": {"enabled": True, "host": "127.0.0.1", "port": port, "discovery": {}},
        }
    )
    device = Device(
        config, driver=SimDriver(), clock=SystemClock(), persistence=MemoryPersistence()
    )
    device.start()
    total = WARMUP + RATE * SECONDS
    assert sub.stdout is not None
    loop = asyncio.get_running_loop()
    ready = await loop.run_in_executor(None, sub.stdout.readline)
    assert ready.strip() == "ready", ready
    service = MqttService(device)
    service.start()
    deadline = time.monotonic() + 10
    while service.state != "connected" or not service._live:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no connection: {service.last_error}")
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.5)  # the initial state and discovery are out
    finished = loop.create_future()
    start = loop.time() + 0.01
    circuits = (Circuit.CLOSED, Circuit.OPEN)

    def change(n: int) -> None:
        device.sim_set_circuit("in1", circuits[n % 2])
        if n + 1 < total:
            loop.call_at(start + (n + 1) / RATE, change, n + 1)
        else:
            finished.set_result(None)

    cpu0 = time.process_time()
    loop.call_at(start, change, 0)
    await finished
    cpu_s = time.process_time() - cpu0
    out = await loop.run_in_executor(None, sub.stdout.read)
    sub.wait(10)
    delays = json.loads(out.strip().splitlines()[-1])
    await service.close()
    device.stop()
    measured = sorted(delays[WARMUP:])
    quantiles = statistics.quantiles(measured, n=100) if len(measured) > 1 else [0] * 99
    return {
        "mqtt_changes": total - WARMUP,
        "mqtt_received": len(measured),
        "mqtt_all_delivered": len(delays) == total,
        "mqtt_latency_p50_ms": round(quantiles[49] / 1e6, 3),
        "mqtt_latency_p99_ms": round(quantiles[98] / 1e6, 3),
        "mqtt_latency_max_ms": round(measured[-1] / 1e6, 3) if measured else None,
        "mqtt_device_cpu_pct": round(100 * cpu_s / (total / RATE), 1),
        "mqtt_rate_per_s": RATE,
    }


def mqtt_latency() -> dict[str, Any]:
    if not os.path.exists(MOSQUITTO):
        # Reported as a miss, not hidden: `make bench` installs it (bench-deps).
        return {
            "mqtt_skipped": "mosquitto is not installed (bash .ci/system-deps)",
            "mqtt_latency_p99_ms": float(10**9),
            "mqtt_all_delivered": False,
        }
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        broker = _start_broker(Path(tmp), port)
        topic = "camio/bench1/event/io/input"
        count = str(WARMUP + RATE * SECONDS)
        command = [sys.executable, "-m", "bench.mqtt", "subscribe", str(port), topic, count]
        sub = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        try:
            return asyncio.run(_drive(port, sub))
        finally:
            if sub.poll() is None:
                sub.kill()
            broker.kill()
            broker.wait(5)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "subscribe":
        subscribe(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    else:
        print(json.dumps(mqtt_latency(), indent=2))
