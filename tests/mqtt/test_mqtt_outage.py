"""A broker restart (SIGKILL, nothing persisted) in the middle of a burst of input changes:
after the reconnection the retained states are right and the event topic lost nothing the
device logged."""

from __future__ import annotations

import asyncio
import json

import pytest
from mqtt_helpers import BASE, Broker, Subscriber, make_device, mqtt_config, wait_for

from camio.core.ports import Circuit
from camio.engine.device import Device
from camio.engine.persistence import EventQuery
from camio.mqtt import MqttService

pytestmark = pytest.mark.asyncio


def toggle(device: Device, count: int) -> None:
    for n in range(count):
        port = "in1" if n % 2 else "in2"
        circuit = Circuit.OPEN if device.inputs[port].active else Circuit.CLOSED
        device.sim_set_circuit(port, circuit)


def logged_ids(device: Device, after: int) -> list[int]:
    return [
        e.id
        for e in device.events(EventQuery(after=after, limit=100_000))
        if e.topic != "mqtt/message"
    ]


def received_ids(sub: Subscriber) -> list[int]:
    return [
        json.loads(m.payload)["id"]  # type: ignore[arg-type]
        for m in sub.messages
        if m.topic.value.startswith(f"{BASE}/event/")
    ]


async def test_broker_restart_during_a_burst(broker: Broker, cleanup: list[object]) -> None:
    device = make_device(mqtt_config(broker.port))
    cleanup.append(device)
    first = await Subscriber(broker.port, [f"{BASE}/event/#"]).start()
    cleanup.append(first)
    service = MqttService(device, rng=lambda: 0.0)  # first retry after 0.8 s
    start_id = device.bus.last_id
    service.start()
    cleanup.append(service)
    await wait_for(lambda: service.state == "connected")

    # 1. Live: a burst, every change delivered.
    for _ in range(50):
        toggle(device, 2)
        await asyncio.sleep(0.002)
    await wait_for(
        lambda: set(logged_ids(device, start_id)) <= set(received_ids(first)), what="phase 1"
    )

    # 2. The broker dies (no clean shutdown: its retained messages are gone) while the
    #    burst goes on; the device logs every change.
    broker.kill()
    await wait_for(lambda: service.state == "disconnected", what="the device to notice")
    toggle(device, 101)
    broker.start()
    second = await Subscriber(broker.port, [f"{BASE}/event/#"]).start()
    cleanup.append(second)
    assert service.state != "connected", "the subscriber must be back before the device"

    # 3. The burst continues across the reconnection and the replay.
    async def burst() -> None:
        for _ in range(100):
            toggle(device, 2)
            await asyncio.sleep(0.002)

    await asyncio.gather(burst(), wait_for(lambda: service.connects == 2, limit_s=10))
    expected = logged_ids(device, start_id)
    await wait_for(
        lambda: set(expected) <= set(received_ids(first)) | set(received_ids(second)),
        limit_s=10,
        what="every logged event on the event topic",
    )
    # Nothing lost, and the replay came in order, before the live events.
    got = received_ids(second)
    first_seen = list(dict.fromkeys(got))
    assert first_seen == sorted(first_seen)
    assert service.replayed >= 101
    await wait_for(lambda: service.acked_id >= expected[-1], what="the PUBACKs")

    # The retained states on the restarted broker are the device's.
    late = await Subscriber(broker.port, [f"{BASE}/input/+", f"{BASE}/availability"]).start()
    cleanup.append(late)
    await wait_for(lambda: late.last(f"{BASE}/input/in1") is not None)
    await wait_for(lambda: late.last(f"{BASE}/input/in2") is not None)
    for port in ("in1", "in2"):
        want = b"ON" if device.inputs[port].active else b"OFF"
        assert late.last(f"{BASE}/input/{port}") == want
    await wait_for(lambda: late.last(f"{BASE}/availability") == b"online", what="online")
    states = [e.data["state"] for e in device.events(EventQuery(topic="mqtt/connection"))]
    assert states[-3:] == ["disconnected", "connecting", "connected"]


async def test_replay_is_bounded(broker: Broker, cleanup: list[object]) -> None:
    device = make_device(mqtt_config(broker.port, max_replay=10))
    cleanup.append(device)
    service = MqttService(device, rng=lambda: 0.0)
    service.start()
    cleanup.append(service)
    await wait_for(lambda: service.state == "connected")
    broker.kill()
    await wait_for(lambda: service.state == "disconnected")
    toggle(device, 40)
    broker.start()
    sub = await Subscriber(broker.port, [f"{BASE}/event/#"]).start()
    cleanup.append(sub)
    await wait_for(lambda: service.connects == 2, limit_s=10)
    await wait_for(lambda: sub.on(f"{BASE}/event/mqtt/replay_truncated"), what="the warning")
    got = received_ids(sub)
    warning = json.loads(sub.on(f"{BASE}/event/mqtt/replay_truncated")[0].payload)  # type: ignore[arg-type]
    newest = [i for i in logged_ids(device, 0) if i < warning["id"]][-10:]
    assert got[:10] == newest  # the oldest were dropped, the newest 10 replayed in order
    assert warning["data"]["first_replayed"] == newest[0]
    assert logged_ids(device, 0)[-1] in got


async def test_acknowledged_id_survives_a_restart(
    broker: Broker, cleanup: list[object], tmp_path: object
) -> None:
    """The device restarts while the broker is away: what it logged meanwhile still goes out."""
    from pathlib import Path

    state = Path(str(tmp_path)) / "mqtt.json"
    device = make_device(mqtt_config(broker.port))
    cleanup.append(device)
    service = MqttService(device, state_file=state, rng=lambda: 0.0)
    service.start()
    await wait_for(lambda: service.state == "connected")
    broker.kill()
    await wait_for(lambda: service.state == "disconnected")
    toggle(device, 5)
    missed = logged_ids(device, service.acked_id)
    await service.close()
    assert json.loads(state.read_text())["acked_event_id"] < missed[0]
    broker.start()
    sub = await Subscriber(broker.port, [f"{BASE}/event/#"]).start()
    cleanup.append(sub)
    again = MqttService(device, state_file=state, rng=lambda: 0.0)
    again.start()
    cleanup.append(again)
    await wait_for(lambda: set(missed) <= set(received_ids(sub)), what="the missed events")
