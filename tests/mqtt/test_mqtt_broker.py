"""The MQTT client against a real mosquitto: availability, retained states, commands, stale
commands, authorisation, Home Assistant discovery and MQTT rule conditions."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from ha_schema import check_discovery
from mqtt_helpers import (
    BASE,
    NODE,
    SERIAL,
    Broker,
    Subscriber,
    make_device,
    mqtt_config,
    publish,
    start_service,
    wait_for,
)

import camio.actions  # noqa: F401  (registers the action kinds)
from camio.core.ports import Circuit
from camio.engine.device import Device
from camio.engine.persistence import EventQuery

pytestmark = pytest.mark.asyncio


def logged(device: Device, topic: str) -> list[dict[str, Any]]:
    return [e.data for e in device.events(EventQuery(topic=topic, limit=10_000))]


async def test_availability_and_state_round_trip(broker: Broker, cleanup: list[object]) -> None:
    device = make_device(mqtt_config(broker.port))
    cleanup.append(device)
    service = await start_service(device)
    cleanup.append(service)
    sub = await Subscriber(broker.port, [f"{BASE}/#"]).start()
    cleanup.append(sub)
    # A subscriber that comes later gets every state at once (retained): nothing "unknown".
    await wait_for(lambda: sub.last(f"{BASE}/availability") == b"online", what="online")
    # (the subscription may land while the device is still publishing: wait for each)
    for topic in ("input/in1", "output/out1", "vinput/32", "trigger/manual"):
        await wait_for(lambda t=topic: sub.last(f"{BASE}/{t}") == b"OFF", what=topic)
    assert all(m.retain for m in sub.on(f"{BASE}/input/in1"))

    device.sim_set_circuit("in1", Circuit.CLOSED)
    await wait_for(lambda: sub.last(f"{BASE}/input/in1") == b"ON", what="input ON")
    await wait_for(lambda: sub.last(f"{BASE}/input/in1/state") is not None)
    state = json.loads(sub.last(f"{BASE}/input/in1/state") or b"")
    await wait_for(lambda: json.loads(sub.last(f"{BASE}/input/in1/state") or b"{}")["active"])
    state = json.loads(sub.last(f"{BASE}/input/in1/state") or b"")
    assert state["circuit"] == "closed" and state["cause"] == {"kind": "sim"}
    assert state["time"].endswith("Z")
    # The event topic carries the logged event, with its id.
    await wait_for(lambda: sub.on(f"{BASE}/event/io/input"), what="event")
    event = json.loads(sub.on(f"{BASE}/event/io/input")[-1].payload)  # type: ignore[arg-type]
    assert event["source"] == "in1" and event["data"]["active"] is True
    assert event["id"] in {e.id for e in device.events(EventQuery(topic="io/input"))}

    # The connection is an event and a status.
    assert logged(device, "mqtt/connection")[-1]["state"] == "connected"
    status = service.status()
    assert status["state"] == "connected" and status["messages_out"] > 0
    assert status["subscriptions"][f"{BASE}/output/+/set"] == "ok"

    # A clean stop says offline (retained) before disconnecting.
    await service.close()
    await wait_for(lambda: sub.last(f"{BASE}/availability") == b"offline", what="offline")


async def test_last_will_on_a_dropped_connection(broker: Broker, cleanup: list[object]) -> None:
    device = make_device(mqtt_config(broker.port, keepalive_s=5))
    cleanup.append(device)
    service = await start_service(device)
    cleanup.append(service)
    sub = await Subscriber(broker.port, [f"{BASE}/availability"]).start()
    cleanup.append(sub)
    await wait_for(lambda: sub.last(f"{BASE}/availability") == b"online")
    client = service._client
    assert client is not None
    sock = client._client.socket()
    assert isinstance(sock, socket.socket)
    sock.shutdown(socket.SHUT_RDWR)  # the network drops: no DISCONNECT is sent
    await wait_for(lambda: sub.last(f"{BASE}/availability") == b"offline", what="last will")
    # ... and the device reconnects by itself (backoff), online again.
    await wait_for(lambda: service.state == "connected" and service.connects == 2, limit_s=10)
    await wait_for(lambda: sub.last(f"{BASE}/availability") == b"online")


async def test_commands_move_outputs_with_an_mqtt_cause(
    broker: Broker, cleanup: list[object]
) -> None:
    device = make_device(mqtt_config(broker.port))
    cleanup.append(device)
    service = await start_service(device)
    cleanup.append(service)
    await publish(broker.port, f"{BASE}/output/out1/set", "ON")
    await wait_for(lambda: device.outputs["out1"].active, what="out1 on")
    cause = device.outputs["out1"].cause
    assert cause.kind == "mqtt" and cause.detail == f"{BASE}/output/out1/set"
    await publish(broker.port, f"{BASE}/output/out1/set", "OFF")
    await wait_for(lambda: not device.outputs["out1"].active, what="out1 off")
    await publish(broker.port, f"{BASE}/output/out2/set", "PULSE 150")
    await wait_for(lambda: device.outputs["out2"].active, what="out2 pulse")
    await wait_for(lambda: not device.outputs["out2"].active, what="out2 pulse end")
    await publish(broker.port, f"{BASE}/vinput/3/set", "ON")
    await wait_for(lambda: device.virtual_inputs[2].active, what="vinput 3")
    # The output changes are in the event log with their MQTT cause.
    changes = device.events(EventQuery(topic="io/output", source="out1"))
    assert [e.cause.kind for e in changes if e.cause] == ["mqtt", "mqtt"]
    results = [d["result"] for d in logged(device, "mqtt/command")]
    assert results == ["done"] * 4
    assert service.commands_done == 4


async def test_refusals_by_configuration(broker: Broker, cleanup: list[object]) -> None:
    config = mqtt_config(broker.port, commands={"deny": ["out2", "vinput/5"]})
    device = make_device(config)
    cleanup.append(device)
    service = await start_service(device)
    cleanup.append(service)
    await publish(broker.port, f"{BASE}/output/out2/set", "ON")  # denied port
    await publish(broker.port, f"{BASE}/vinput/5/set", "ON")  # denied virtual input
    await publish(broker.port, f"{BASE}/trigger/manual/set", "ON")  # kind off by default
    await publish(broker.port, f"{BASE}/rule/r1/trigger", "PRESS")  # kind off by default
    await publish(broker.port, f"{BASE}/output/out1/set", "SOMETIMES")  # not a command
    await wait_for(lambda: service.commands_refused == 5, what="five refusals")
    assert not device.outputs["out2"].active and not device.manual.active
    assert not device.virtual_inputs[4].active
    reasons = [d["reason"] for d in logged(device, "mqtt/command")]
    assert any("deny lists 'out2'" in r for r in reasons)
    assert any("does not allow manual commands" in r for r in reasons)
    assert any("does not allow rule commands" in r for r in reasons)
    assert any("unknown command" in r for r in reasons)


async def test_a_retained_command_never_moves_an_output(
    broker: Broker, cleanup: list[object]
) -> None:
    """Tasmota#628: a retained ON left on the broker re-armed a relay after power loss."""
    await publish(broker.port, f"{BASE}/output/out1/set", "ON", retain=True)
    device = make_device(mqtt_config(broker.port))
    cleanup.append(device)
    service = await start_service(device)
    cleanup.append(service)
    await wait_for(lambda: service.commands_ignored == 1, what="the stale command")
    assert not device.outputs["out1"].active
    entry = logged(device, "mqtt/command")[-1]
    assert entry["result"] == "ignored" and "retained" in entry["reason"]
    # The stale copy is cleared from the broker: a later subscriber does not get it.
    sub = await Subscriber(broker.port, [f"{BASE}/output/out1/set"]).start()
    cleanup.append(sub)
    await publish(broker.port, "unrelated/marker", "x")
    assert sub.on(f"{BASE}/output/out1/set") == []
    # A command stamped before the device started is stale too.
    old = device.stats.started_wall_ns / 1e9 - 5
    await publish(broker.port, f"{BASE}/output/out1/set", json.dumps({"state": "ON", "ts": old}))
    await wait_for(lambda: service.commands_ignored == 2, what="the old command")
    assert not device.outputs["out1"].active
    # A fresh one works.
    await publish(broker.port, f"{BASE}/output/out1/set", "ON")
    await wait_for(lambda: device.outputs["out1"].active)


def _rule(rule_id: str, condition: dict[str, Any], port: str, mode: str) -> dict[str, Any]:
    return {
        "id": rule_id,
        "name": rule_id,
        "conditions": [condition],
        "action_mode": mode,
        "action": {"kind": "set_output", "port": port, "duration_ms": 100_000}
        if mode == "once"
        else {"kind": "set_output", "port": port},
    }


async def test_mqtt_conditions_drive_rules(broker: Broker, cleanup: list[object]) -> None:
    config = mqtt_config(broker.port).model_dump(mode="json")
    config["rules"] = [
        _rule(
            "motion",
            {"kind": "mqtt", "topic": "sensors/+/motion", "payload": "1"},
            "out1",
            "once",
        ),
        _rule(
            "door",
            {
                "kind": "mqtt",
                "topic": "sensors/door",
                "payload": "open|OPEN",
                "match": "regex",
                "mode": "stateful",
            },
            "out2",
            "while_active",
        ),
    ]
    from camio.core.config import DeviceConfig

    # A retained "open" is the stateful condition's initial state; a retained motion pulse
    # is old news and fires nothing.
    await publish(broker.port, "sensors/door", "OPEN", retain=True)
    await publish(broker.port, "sensors/hall/motion", "1", retain=True)
    device = make_device(DeviceConfig.model_validate(config))
    cleanup.append(device)
    service = await start_service(device)
    cleanup.append(service)
    await wait_for(lambda: device.outputs["out2"].active, what="door open (retained)")
    assert not device.outputs["out1"].active
    assert set(service.status()["condition_filters"]) == {"sensors/+/motion", "sensors/door"}

    await publish(broker.port, "sensors/door", "closed")
    await wait_for(lambda: not device.outputs["out2"].active, what="door closed")
    await publish(broker.port, "sensors/kitchen/motion", "0")  # wrong payload
    await publish(broker.port, "sensors/door", "open")
    await wait_for(lambda: device.outputs["out2"].active, what="door open")
    assert not device.outputs["out1"].active
    await publish(broker.port, "sensors/kitchen/motion", "1")
    await wait_for(lambda: device.outputs["out1"].active, what="motion fired the rule")
    assert device.outputs["out1"].cause.rule == "motion"
    messages = logged(device, "mqtt/message")
    assert {"topic": "sensors/kitchen/motion", "payload": "1", "retain": False} in messages

    # Deleting the rule unsubscribes its filter.
    device.delete_rule("motion")
    await wait_for(lambda: "sensors/+/motion" not in service.subscriptions, what="unsubscribe")
    assert service.status()["condition_filters"] == ["sensors/door"]


async def test_home_assistant_discovery(broker: Broker, cleanup: list[object]) -> None:
    config = mqtt_config(
        broker.port,
        commands={"rules": True},
        discovery={"device_classes": {"in1": "door", "in2": "motion"}, "virtual_inputs": 2},
    ).model_dump(mode="json")
    config["rules"] = [_rule("r1", {"kind": "manual_trigger"}, "out1", "once")]
    from camio.core.config import DeviceConfig

    device = make_device(DeviceConfig.model_validate(config))
    cleanup.append(device)
    ha = await Subscriber(broker.port, ["homeassistant/#"]).start()
    cleanup.append(ha)
    service = await start_service(device)
    cleanup.append(service)
    expected = {
        f"homeassistant/binary_sensor/{NODE}/input_in1/config",
        f"homeassistant/binary_sensor/{NODE}/input_in2/config",
        f"homeassistant/switch/{NODE}/output_out1/config",
        f"homeassistant/switch/{NODE}/output_out2/config",
        f"homeassistant/switch/{NODE}/vinput_1/config",
        f"homeassistant/switch/{NODE}/vinput_2/config",
        f"homeassistant/binary_sensor/{NODE}/manual_trigger/config",  # not commandable
        f"homeassistant/button/{NODE}/rule_r1/config",
    }
    await wait_for(lambda: expected <= {m.topic.value for m in ha.messages}, what="all")
    configs = {m.topic.value: json.loads(m.payload) for m in ha.messages if m.payload}  # type: ignore[arg-type]
    assert set(configs) == expected
    retained = await Subscriber(broker.port, ["homeassistant/#"]).start()
    cleanup.append(retained)
    await wait_for(lambda: expected <= {m.topic.value for m in retained.messages}, what="kept")
    assert all(m.retain for m in retained.messages)
    unique_ids = set()
    for topic, doc in configs.items():
        component = topic.split("/")[1]
        assert check_discovery(component, doc) == [], topic
        unique_ids.add(doc["unique_id"])
        assert doc["availability_topic"] == f"{BASE}/availability"
        assert doc["device"]["identifiers"] == [f"camio_{SERIAL}"]
        assert doc["device"]["manufacturer"] == "camio"
        assert doc["device"]["model"] == "camio-sim" and doc["device"]["sw_version"]
        assert doc["device"]["name"] == "Test box"
    assert len(unique_ids) == len(configs)  # unique and stable (serial + port id)
    door = configs[f"homeassistant/binary_sensor/{NODE}/input_in1/config"]
    assert door["device_class"] == "door" and door["unique_id"] == f"camio_{SERIAL}_input_in1"
    assert door["state_topic"] == f"{BASE}/input/in1"
    assert (door["payload_on"], door["payload_off"]) == ("ON", "OFF")
    siren = configs[f"homeassistant/switch/{NODE}/output_out1/config"]
    assert siren["command_topic"] == f"{BASE}/output/out1/set"
    assert siren["state_topic"] == f"{BASE}/output/out1"
    button = configs[f"homeassistant/button/{NODE}/rule_r1/config"]
    assert button["command_topic"] == f"{BASE}/rule/r1/trigger"

    # The button works (rule commands allowed here): HA publishes payload_press.
    await publish(broker.port, button["command_topic"], button["payload_press"])
    await wait_for(lambda: device.outputs["out1"].active, what="test-fired rule")

    # Home Assistant restarts and says so: every config comes again.
    ha.clear()
    await publish(broker.port, "homeassistant/status", "online")
    await wait_for(lambda: expected <= {m.topic.value for m in ha.messages}, what="republish")

    # A deleted port's entity is removed (empty retained config); so is a deleted rule's.
    ha.clear()
    watch = await Subscriber(broker.port, [f"{BASE}/output/out2/#", f"{BASE}/output/out2"]).start()
    cleanup.append(watch)
    device.edit_config(
        lambda data: (
            data.__setitem__("outputs", [o for o in data["outputs"] if o["id"] != "out2"]),
            data.__setitem__("rules", []),
        )
    )
    removed = f"homeassistant/switch/{NODE}/output_out2/config"
    await wait_for(lambda: ha.last(removed) == b"", what="removal")
    await wait_for(lambda: ha.last(f"homeassistant/button/{NODE}/rule_r1/config") == b"")
    # Its retained state is gone too.
    await wait_for(lambda: watch.last(f"{BASE}/output/out2") == b"", what="state removal")
    await wait_for(lambda: watch.last(f"{BASE}/output/out2/state") == b"")
    late = await Subscriber(broker.port, [f"{BASE}/output/#"]).start()
    cleanup.append(late)
    await wait_for(lambda: late.last(f"{BASE}/output/out1") is not None)
    assert late.on(f"{BASE}/output/out2") == []

    # Turning discovery off removes every entity.
    ha.clear()
    device.edit_config(lambda data: data["mqtt"]["discovery"].__setitem__("enabled", False))
    await wait_for(
        lambda: len([m for m in ha.messages if m.payload == b""]) >= 6, what="all removed"
    )
    fresh = await Subscriber(broker.port, ["homeassistant/#"]).start()
    cleanup.append(fresh)
    await publish(broker.port, "unrelated/marker", "x")
    assert [m for m in fresh.messages if m.payload] == []


async def test_status_masks_the_password(broker: Broker, cleanup: list[object]) -> None:
    device = make_device(mqtt_config(broker.port, username="u", password="s3cret-pass"))
    cleanup.append(device)
    service = await start_service(device)
    cleanup.append(service)
    status = service.status()
    assert status["password"] == "********"
    assert "s3cret-pass" not in json.dumps(status)
    assert "s3cret-pass" not in repr(device.config.mqtt)


async def test_turning_mqtt_on_later_starts_from_now(broker: Broker, cleanup: list[object]) -> None:
    """The history logged while MQTT was off is not dumped on the broker when it is turned on."""
    from camio.mqtt import MqttService

    config = mqtt_config(broker.port)
    config = config.model_copy(update={"mqtt": config.mqtt.model_copy(update={"enabled": False})})
    device = make_device(config)
    cleanup.append(device)
    service = MqttService(device)
    service.start()
    cleanup.append(service)
    device.sim_set_circuit("in1", Circuit.CLOSED)
    device.sim_set_circuit("in1", Circuit.OPEN)
    before = device.bus.last_id
    sub = await Subscriber(broker.port, [f"{BASE}/event/#"]).start()
    cleanup.append(sub)
    device.edit_config(lambda data: data["mqtt"].__setitem__("enabled", True))
    await wait_for(lambda: service.state == "connected", what="turned on")
    device.sim_set_circuit("in2", Circuit.CLOSED)
    await wait_for(lambda: sub.on(f"{BASE}/event/io/input"), what="the new change")
    ids = [json.loads(m.payload)["id"] for m in sub.messages]  # type: ignore[arg-type]
    assert min(ids) > before
