"""Home Assistant MQTT discovery: one retained config message per entity.

``<discovery prefix>/<component>/<node>/<object id>/config``. Inputs are ``binary_sensor``
(with the device class the user picked), outputs, virtual inputs and the manual trigger are
``switch`` when MQTT may command them (else ``binary_sensor``, read only), rules are ``button``
(test-fire) when rule commands are allowed. The ``unique_id`` is ``camio_<serial>_<object>``
so renaming a port keeps the entity. An entity that goes away gets an empty retained config,
which is how Home Assistant removes it.
"""

from __future__ import annotations

import json
from typing import Any

from camio import __version__
from camio.core.config import DeviceConfig
from camio.mqtt.topics import OFF, OFFLINE, ON, ONLINE, Layout


def device_info(config: DeviceConfig) -> dict[str, Any]:
    ident = config.device
    return {
        "identifiers": [f"camio_{ident.serial}"],
        "name": ident.name,
        "manufacturer": ident.brand,
        "model": ident.model,
        "serial_number": ident.serial,
        "sw_version": ident.firmware,
    }


def _allowed(config: DeviceConfig, kind: str, ident: str) -> bool:
    commands = config.mqtt.commands
    flag = {
        "output": commands.outputs,
        "vinput": commands.virtual_inputs,
        "manual": commands.manual_trigger,
        "rule": commands.rules,
    }[kind]
    target = {"output": ident, "vinput": f"vinput/{ident}", "manual": "manual"}.get(
        kind, f"rule/{ident}"
    )
    return flag and target not in commands.deny


def discovery_configs(config: DeviceConfig, layout: Layout) -> dict[str, str]:
    """Every entity's config topic and JSON payload for ``config``."""
    mqtt = config.mqtt
    disc = mqtt.discovery
    if not disc.enabled:
        return {}
    serial = config.device.serial
    common: dict[str, Any] = {
        "availability_topic": layout.availability,
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "device": device_info(config),
        "origin": {"name": "camio", "sw_version": __version__},
        "qos": mqtt.qos,
    }
    out: dict[str, str] = {}

    def add(component: str, object_id: str, entity: dict[str, Any]) -> None:
        entity = {**entity, "unique_id": f"camio_{serial}_{object_id}", **common}
        topic = f"{disc.prefix}/{component}/{layout.node}/{object_id}/config"
        out[topic] = json.dumps(entity, separators=(",", ":"), sort_keys=True)

    def stateful(
        kind: str, ident: str, name: str, state_topic: str, command_topic: str
    ) -> tuple[str, dict[str, Any]]:
        entity: dict[str, Any] = {
            "name": name,
            "state_topic": state_topic,
            "json_attributes_topic": f"{state_topic}/state",
            "payload_on": ON,
            "payload_off": OFF,
        }
        if _allowed(config, kind, ident):
            entity.update(command_topic=command_topic, state_on=ON, state_off=OFF)
            return "switch", entity
        return "binary_sensor", entity

    base = layout.base
    for inp in config.inputs:
        entity = {
            "name": inp.name,
            "state_topic": f"{base}/input/{inp.id}",
            "json_attributes_topic": f"{base}/input/{inp.id}/state",
            "payload_on": ON,
            "payload_off": OFF,
        }
        device_class = disc.device_classes.get(inp.id)
        if device_class:
            entity["device_class"] = device_class
        add("binary_sensor", f"input_{inp.id}", entity)
    for outp in config.outputs:
        component, entity = stateful(
            "output",
            outp.id,
            outp.name,
            f"{base}/output/{outp.id}",
            f"{base}/output/{outp.id}/set",
        )
        add(component, f"output_{outp.id}", entity)
    for number in range(1, disc.virtual_inputs + 1):
        component, entity = stateful(
            "vinput",
            str(number),
            f"Virtual input {number}",
            f"{base}/vinput/{number}",
            f"{base}/vinput/{number}/set",
        )
        add(component, f"vinput_{number}", entity)
    if disc.manual_trigger:
        component, entity = stateful(
            "manual",
            "",
            "Manual trigger",
            f"{base}/trigger/manual",
            f"{base}/trigger/manual/set",
        )
        add(component, "manual_trigger", entity)
    if disc.rules:
        for rule in config.rules:
            if not _allowed(config, "rule", rule.id):
                continue
            add(
                "button",
                f"rule_{rule.id}",
                {
                    "name": f"Test rule {rule.name}",
                    "command_topic": f"{base}/rule/{rule.id}/trigger",
                    "payload_press": "PRESS",
                },
            )
    return out


def discovery_filter(config: DeviceConfig, layout: Layout) -> str:
    """The filter that sees this device's own retained configs (to remove stale ones)."""
    return f"{config.mqtt.discovery.prefix}/+/{layout.node}/+/config"
