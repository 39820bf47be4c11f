"""MQTT configuration and the pure parts of MQTT: topic filters, payload matches, node ids.

The client itself lives in :mod:`camio.mqtt`; this module has no sockets and no asyncio so the
configuration validates and the ``mqtt`` rule condition evaluates without the client.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from camio.core.ports import Model

#: Home Assistant's binary_sensor device classes (homeassistant/components/binary_sensor).
BINARY_SENSOR_CLASSES = frozenset(
    {
        "battery",
        "battery_charging",
        "carbon_monoxide",
        "cold",
        "connectivity",
        "door",
        "garage_door",
        "gas",
        "heat",
        "light",
        "lock",
        "moisture",
        "motion",
        "moving",
        "occupancy",
        "opening",
        "plug",
        "power",
        "presence",
        "problem",
        "running",
        "safety",
        "smoke",
        "sound",
        "tamper",
        "update",
        "vibration",
        "window",
    }
)

#: Longest regular expression a payload match may use, and the part of a payload it sees:
#: Python's ``re`` has no timeout, so both are bounded.
MAX_PATTERN = 200
MAX_MATCHED_PAYLOAD = 4096

TOPIC_LEVEL = re.compile(r"^[^+#\x00]*$")
NODE_ID = r"^[a-z0-9_-]{1,64}$"


def valid_filter(topic_filter: str) -> str:
    """Check an MQTT topic filter (``+`` a whole level, ``#`` only last); return it."""
    if not topic_filter or len(topic_filter.encode()) > 1024:
        raise ValueError("a topic filter has 1 to 1024 bytes")
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if level in ("+", "#"):
            if level == "#" and index != len(levels) - 1:
                raise ValueError("'#' must be the last level of a topic filter")
            continue
        if not TOPIC_LEVEL.match(level):
            raise ValueError(f"'+' and '#' must fill a whole level (in {topic_filter!r})")
    return topic_filter


@lru_cache(maxsize=1024)
def _levels(topic_filter: str) -> tuple[str, ...]:
    return tuple(topic_filter.split("/"))


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic`` matches ``topic_filter`` (MQTT 3.1.1 §4.7; ``$`` topics need a
    filter that names their first level)."""
    pattern = _levels(topic_filter)
    levels = topic.split("/")
    if topic.startswith("$") and pattern[0] in ("+", "#"):
        return False
    for index, want in enumerate(pattern):
        if want == "#":
            return True
        if index >= len(levels):
            return False
        if want != "+" and want != levels[index]:
            return False
    return len(levels) == len(pattern)


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def payload_matches(kind: Literal["any", "exact", "regex"], pattern: str, payload: str) -> bool:
    """The payload match of an ``mqtt`` condition (a regex must match the whole payload)."""
    if kind == "any":
        return True
    if kind == "exact":
        return payload == pattern
    return _compiled(pattern).fullmatch(payload[:MAX_MATCHED_PAYLOAD]) is not None


class MqttTls(Model):
    """TLS to the broker (``mqtts``, usually port 8883)."""

    enabled: bool = False
    ca_file: str | None = Field(None, description="CA bundle (PEM); default: the system CAs")
    cert_file: str | None = Field(None, description="Client certificate (PEM)")
    key_file: str | None = Field(None, description="Client private key (PEM)")
    verify: bool = Field(True, description="Verify the broker's certificate and host name")

    @model_validator(mode="after")
    def _pair(self) -> MqttTls:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate needs both cert_file and key_file")
        return self


class MqttCommands(Model):
    """Which commands the device accepts over MQTT (anyone who may publish on the broker
    can send them: allow only what the broker's ACLs protect)."""

    outputs: bool = Field(True, description="Accept <prefix>/<node>/output/<id>/set")
    virtual_inputs: bool = Field(True, description="Accept <prefix>/<node>/vinput/<n>/set")
    manual_trigger: bool = Field(False, description="Accept <prefix>/<node>/trigger/manual/set")
    rules: bool = Field(False, description="Accept <prefix>/<node>/rule/<id>/trigger (test-fire)")
    deny: list[Annotated[str, Field(max_length=80)]] = Field(
        default_factory=list,
        max_length=256,
        description="Refused targets even when their kind is allowed: an output id, "
        "'vinput/<n>', 'manual' or 'rule/<id>'",
    )
    max_age_s: Annotated[int, Field(ge=1, le=86_400)] = Field(
        60,
        description="A command carrying a timestamp (JSON 'time'/'ts' or an MQTT v5 user "
        "property 'time') older than this is ignored",
    )


class MqttDiscovery(Model):
    """Home Assistant MQTT discovery (one config topic per entity)."""

    enabled: bool = True
    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_/-]{1,64}$")] = "homeassistant"
    device_classes: dict[str, str] = Field(
        default_factory=dict,
        description="binary_sensor device_class per input id (door, motion, window, ...)",
    )
    virtual_inputs: Annotated[int, Field(ge=0, le=32)] = Field(
        4, description="How many virtual inputs (from 1) appear as switches"
    )
    rules: bool = Field(True, description="A 'test-fire' button per rule")
    manual_trigger: bool = Field(True, description="The manual trigger as a switch")

    @field_validator("device_classes")
    @classmethod
    def _classes(cls, value: dict[str, str]) -> dict[str, str]:
        for port, device_class in value.items():
            if device_class not in BINARY_SENSOR_CLASSES:
                raise ValueError(
                    f"{port}: {device_class!r} is not a Home Assistant binary_sensor "
                    f"device class ({', '.join(sorted(BINARY_SENSOR_CLASSES))})"
                )
        return value


class MqttConfig(Model):
    """The MQTT client: state, events and commands on a broker, Home Assistant discovery."""

    enabled: bool = Field(False, description="Connect to the broker (off: no MQTT at all)")
    host: Annotated[str, Field(min_length=1, max_length=253)] = "localhost"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    protocol: Literal["3.1.1", "5"] = "5"
    tls: MqttTls = Field(default_factory=MqttTls)
    username: Annotated[str, Field(max_length=256)] | None = None
    password: str | None = Field(
        None, max_length=256, repr=False, description="Never logged; masked in the status API"
    )
    client_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] | None = Field(
        None, description="Default: camio-<node id>"
    )
    node_id: Annotated[str, Field(pattern=NODE_ID)] | None = Field(
        None, description="The <device> level of every topic; default: the serial, lower-case"
    )
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    qos: Literal[0, 1, 2] = 1
    topic_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")] = "camio"
    event_topics: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=lambda: ["#"],
        max_length=64,
        description="Internal event topics published on <prefix>/<node>/event/<topic> "
        "(MQTT filters over topics such as io/input; ['#'] = all, [] = none)",
    )
    event_retain_stateful: bool = Field(
        False, description="Retain the event messages of stateful topics"
    )
    max_replay: Annotated[int, Field(ge=0, le=1_000_000)] = Field(
        10_000,
        description="Events logged while the broker was away, published on reconnect; the "
        "oldest beyond this are dropped (with an mqtt/replay_truncated event)",
    )
    message_events_per_s: Annotated[int, Field(ge=1, le=10_000)] = Field(
        20, description="Incoming messages logged as mqtt/message events per filter per second"
    )
    commands: MqttCommands = Field(default_factory=MqttCommands)
    discovery: MqttDiscovery = Field(default_factory=MqttDiscovery)

    @field_validator("event_topics")
    @classmethod
    def _filters(cls, value: list[str]) -> list[str]:
        return [valid_filter(item) for item in value]

    def node(self, serial: str) -> str:
        """The stable ``<device>`` topic level."""
        if self.node_id:
            return self.node_id
        return re.sub(r"[^a-z0-9_-]", "_", serial.lower())[:64]


__all__ = [
    "BINARY_SENSOR_CLASSES",
    "MqttCommands",
    "MqttConfig",
    "MqttDiscovery",
    "MqttTls",
    "payload_matches",
    "topic_matches",
    "valid_filter",
]
