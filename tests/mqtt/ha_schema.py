"""Home Assistant's MQTT discovery schema for the entities camio announces, written from
Home Assistant's own voluptuous schemas (homeassistant/components/mqtt: ``schemas.py``
MQTT_ENTITY_COMMON_SCHEMA and the device/origin schemas, ``config.py`` MQTT_RO_SCHEMA /
MQTT_RW_SCHEMA, ``binary_sensor.py``, ``switch.py``, ``button.py``).

Home Assistant drops unknown keys silently (``extra=vol.REMOVE_EXTRA``), so a misspelt key
would simply not work there; this checker refuses unknown keys instead.
"""

from __future__ import annotations

import re
from typing import Any

from camio.core.mqtt import BINARY_SENSOR_CLASSES

STR = (str,)
BOOL = (bool,)

# Keys common to every entity: availability, device, origin, attributes, ids.
COMMON: dict[str, tuple[tuple[type, ...], bool]] = {
    "availability_topic": (STR, False),
    "payload_available": (STR, False),
    "payload_not_available": (STR, False),
    "availability_mode": (STR, False),
    "device": ((dict,), False),
    "origin": ((dict,), False),
    "enabled_by_default": (BOOL, False),
    "entity_category": (STR, False),
    "icon": (STR, False),
    "json_attributes_topic": (STR, False),
    "object_id": (STR, False),
    "unique_id": (STR, False),
    "qos": ((int,), False),
    "encoding": (STR, False),
    "name": ((str, type(None)), False),
}

COMPONENTS: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    # MQTT_RO_SCHEMA: state_topic is required.
    "binary_sensor": {
        "state_topic": (STR, True),
        "device_class": ((str, type(None)), False),
        "expire_after": ((int,), False),
        "force_update": (BOOL, False),
        "off_delay": ((int,), False),
        "payload_on": (STR, False),
        "payload_off": (STR, False),
        "value_template": (STR, False),
    },
    # MQTT_RW_SCHEMA: command_topic is required.
    "switch": {
        "command_topic": (STR, True),
        "state_topic": (STR, False),
        "retain": (BOOL, False),
        "payload_on": (STR, False),
        "payload_off": (STR, False),
        "state_on": (STR, False),
        "state_off": (STR, False),
        "optimistic": (BOOL, False),
        "device_class": ((str, type(None)), False),
        "value_template": (STR, False),
        "command_template": (STR, False),
    },
    "button": {
        "command_topic": (STR, True),
        "payload_press": (STR, False),
        "retain": (BOOL, False),
        "device_class": ((str, type(None)), False),
        "command_template": (STR, False),
    },
}

DEVICE: dict[str, tuple[type, ...]] = {
    "identifiers": (list, str),
    "connections": (list,),
    "manufacturer": STR,
    "model": STR,
    "model_id": STR,
    "name": STR,
    "hw_version": STR,
    "serial_number": STR,
    "sw_version": STR,
    "via_device": STR,
    "suggested_area": STR,
    "configuration_url": STR,
}

TOPIC_NO_WILDCARD = re.compile(r"^[^+#\x00]+$")


def check_discovery(component: str, doc: dict[str, Any]) -> list[str]:
    """Every way ``doc`` breaks the schema of ``component`` (empty: valid)."""
    errors: list[str] = []
    if component not in COMPONENTS:
        return [f"unknown component {component!r}"]
    schema = {**COMMON, **COMPONENTS[component]}
    for key, (types, required) in schema.items():
        if key not in doc:
            if required:
                errors.append(f"{key}: required")
            continue
        value = doc[key]
        if isinstance(value, bool) and bool not in types:
            errors.append(f"{key}: bool where {types} expected")
        elif not isinstance(value, types):
            errors.append(f"{key}: {type(value).__name__} where {types} expected")
    for key in doc:
        if key not in schema:
            errors.append(f"{key}: not a key of {component}")
    for key in ("state_topic", "command_topic", "availability_topic", "json_attributes_topic"):
        if isinstance(doc.get(key), str) and not TOPIC_NO_WILDCARD.match(doc[key]):
            errors.append(f"{key}: not a valid topic")
    if "qos" in doc and doc["qos"] not in (0, 1, 2):
        errors.append("qos: must be 0, 1 or 2")
    device_class = doc.get("device_class")
    if component == "binary_sensor" and device_class not in (None, *BINARY_SENSOR_CLASSES):
        errors.append(f"device_class: {doc['device_class']!r} unknown")
    device = doc.get("device")
    if isinstance(device, dict):
        if not device.get("identifiers") and not device.get("connections"):
            errors.append("device: needs identifiers or connections")
        for key, value in device.items():
            types = DEVICE.get(key)
            if types is None:
                errors.append(f"device.{key}: unknown")
            elif not isinstance(value, types):
                errors.append(f"device.{key}: {type(value).__name__}")
        for ident in device.get("identifiers", []):
            if not isinstance(ident, str):
                errors.append("device.identifiers: strings only")
    origin = doc.get("origin")
    if isinstance(origin, dict):
        if not isinstance(origin.get("name"), str):
            errors.append("origin.name: required string")
        for key in origin:
            if key not in ("name", "sw_version", "support_url"):
                errors.append(f"origin.{key}: unknown")
    if "unique_id" in doc and "device" not in doc:
        errors.append("device: an entity with a unique_id should name its device")
    return errors
