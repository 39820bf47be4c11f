"""The device configuration: one validated document.

It is saved atomically with a revision number by :mod:`camio.store.config_store`; an invalid
document is refused whole, with a message naming the field, and nothing changes.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

from pydantic import Field, SerializeAsAny, field_validator, model_validator

from camio import __version__
from camio.core.dialects import DialectsConfig
from camio.core.gpio_config import GpioConfig
from camio.core.media import StorageConfig, VideoConfig
from camio.core.mqtt import MqttConfig
from camio.core.ports import InputConfig, InterlockGroup, Model, OutputConfig, TimeZone
from camio.core.recipients import RecipientSpec, recipient_by_kind
from camio.core.rules import RuleConfig
from camio.core.schedules import ScheduleConfig

VIRTUAL_INPUTS = 32


def _serial() -> str:
    return "CAMIO" + secrets.token_hex(4).upper()


class DeviceIdentity(Model):
    """Who the device says it is to clients (dialects show these as brand, model, serial)."""

    name: Annotated[str, Field(min_length=1, max_length=64)] = "camio"
    brand: Annotated[str, Field(min_length=1, max_length=64)] = "camio"
    model: Annotated[str, Field(min_length=1, max_length=64)] = "camio-sim"
    serial: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")] = Field(default_factory=_serial)
    firmware: Annotated[str, Field(min_length=1, max_length=32)] = __version__
    timezone: TimeZone = "UTC"


class HardwareConfig(Model):
    """Which driver runs the terminal block: the simulator (default) or real GPIO."""

    driver: Literal["sim", "gpio"] = Field(
        "sim", description="sim = the simulator; gpio = Linux GPIO lines (libgpiod v2)"
    )
    gpio: GpioConfig = Field(
        default_factory=GpioConfig, description="The pin map (used by the gpio driver)"
    )


class NetworkConfig(Model):
    """How the device is reached: HTTPS beside plain HTTP, as cameras do."""

    https: bool = Field(True, description="Serve HTTPS (self-signed until one is uploaded)")
    http_mode: Literal["both", "redirect", "off"] = Field(
        "both",
        description="Plain HTTP: serve it, redirect it to HTTPS, or turn it off. A listener "
        "given with --listen always serves plain HTTP.",
    )

    @model_validator(mode="after")
    def _https_for_redirect(self) -> NetworkConfig:
        if not self.https and self.http_mode != "both":
            raise ValueError(f"http_mode {self.http_mode!r} needs https: true")
        return self


class EventLogConfig(Model):
    max_events: Annotated[int, Field(ge=100, le=10_000_000)] = 100_000
    max_age_days: Annotated[int, Field(ge=1, le=3650)] = 30


class OutboxConfig(Model):
    """How the durable outbox retries a delivery before giving up on it."""

    expire_after_s: Annotated[int, Field(ge=60, le=30 * 86_400)] = Field(
        86_400, description="A delivery not done after this long is given up (expired)"
    )
    max_attempts: Annotated[int, Field(ge=1, le=10_000)] | None = Field(
        None, description="Give up after this many attempts (default: only expiry limits)"
    )
    backoff_base_ms: Annotated[int, Field(ge=10, le=3_600_000)] = 1_000
    backoff_max_ms: Annotated[int, Field(ge=10, le=86_400_000)] = 300_000
    max_queued: Annotated[int, Field(ge=10, le=1_000_000)] = 10_000


def default_inputs() -> list[InputConfig]:
    return [
        InputConfig(id="in1", name="Input 1"),
        InputConfig(id="in2", name="Input 2"),
    ]


def default_outputs() -> list[OutputConfig]:
    return [OutputConfig(id="out1", name="Relay 1", rating="24 V DC 1 A")]


class DeviceConfig(Model):
    """The whole configuration of one device."""

    device: DeviceIdentity = Field(default_factory=DeviceIdentity)
    hardware: HardwareConfig = Field(default_factory=HardwareConfig)
    inputs: Annotated[list[InputConfig], Field(max_length=256)] = Field(
        default_factory=default_inputs
    )
    outputs: Annotated[list[OutputConfig], Field(max_length=256)] = Field(
        default_factory=default_outputs
    )
    port_order: list[str] | None = Field(
        None, description="Terminal order of ports; default: inputs, then outputs"
    )
    interlock_groups: list[InterlockGroup] = Field(default_factory=list)
    schedules: Annotated[list[ScheduleConfig], Field(max_length=256)] = Field(default_factory=list)
    rules: Annotated[list[RuleConfig], Field(max_length=4096)] = Field(default_factory=list)
    recipients: Annotated[list[SerializeAsAny[RecipientSpec]], Field(max_length=256)] = Field(
        default_factory=list
    )
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    event_log: EventLogConfig = Field(default_factory=EventLogConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    video: VideoConfig = Field(default_factory=VideoConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    dialects: DialectsConfig = Field(default_factory=DialectsConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)

    @field_validator("recipients", mode="before")
    @classmethod
    def _recipients_by_kind(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [recipient_by_kind(item) for item in value]

    @model_validator(mode="after")
    def _references(self) -> DeviceConfig:
        recipient_ids = [r.id for r in self.recipients]
        if len(set(recipient_ids)) != len(recipient_ids):
            raise ValueError("recipient ids must be unique")
        port_dirs: dict[str, str] = {}
        for direction, ports in (("input", self.inputs), ("output", self.outputs)):
            for port in ports:
                if port.id in port_dirs:
                    raise ValueError(f"port id {port.id!r} is used twice")
                port_dirs[port.id] = direction
        schedules = {s.id: s for s in self.schedules}
        if len(schedules) != len(self.schedules):
            raise ValueError("schedule ids must be unique")
        groups = {g.id for g in self.interlock_groups}
        if len(groups) != len(self.interlock_groups):
            raise ValueError("interlock group ids must be unique")
        for index, inp in enumerate(self.inputs):
            if inp.arming_schedule and schedules.get(inp.arming_schedule) is None:
                raise ValueError(
                    f"inputs.{index}.arming_schedule: no schedule {inp.arming_schedule!r}"
                )
        for index, out in enumerate(self.outputs):
            if out.timed_schedule:
                sched = schedules.get(out.timed_schedule)
                if sched is None:
                    raise ValueError(
                        f"outputs.{index}.timed_schedule: no schedule {out.timed_schedule!r}"
                    )
                if sched.kind != "interval":
                    raise ValueError(
                        f"outputs.{index}.timed_schedule: {out.timed_schedule!r} must be an "
                        "interval schedule"
                    )
            if out.interlock_group and out.interlock_group not in groups:
                raise ValueError(
                    f"outputs.{index}.interlock_group: no group {out.interlock_group!r}"
                )
        if self.port_order is not None and sorted(self.port_order) != sorted(port_dirs):
            raise ValueError("port_order must list every port id exactly once")
        rule_ids: set[str] = set()
        for index, rule in enumerate(self.rules):
            if rule.id in rule_ids:
                raise ValueError(f"rules.{index}.id: rule id {rule.id!r} is used twice")
            rule_ids.add(rule.id)
            actions = [rule.action] if rule.fallback is None else [rule.action, rule.fallback]
            for action in actions:
                for rid in getattr(action, "recipients", None) or []:
                    if rid not in recipient_ids:
                        raise ValueError(f"rules.{index}: no recipient {rid!r}")
            refs = [ref for cond in rule.conditions for ref in cond.port_refs()]
            refs += rule.action.port_refs()
            if rule.fallback is not None:
                refs += rule.fallback.port_refs()
            for direction, port_id in refs:
                if port_dirs.get(port_id) != direction:
                    raise ValueError(f"rules.{index}: no {direction} port {port_id!r}")
            for cond_index, cond in enumerate(rule.conditions):
                for sched_id in cond.schedule_refs():
                    sched = schedules.get(sched_id)
                    if sched is None:
                        raise ValueError(
                            f"rules.{index}.conditions.{cond_index}: no schedule {sched_id!r}"
                        )
                    if sched.kind == "pulse" and rule.action_mode == "while_active":
                        raise ValueError(
                            f"rules.{index}: pulse schedule {sched_id!r} is momentary; a "
                            "'while_active' rule needs an interval schedule"
                        )
        return self

    def ordered_port_ids(self) -> list[str]:
        """Terminal order: ``port_order`` when set, else inputs then outputs."""
        if self.port_order is not None:
            return list(self.port_order)
        return [p.id for p in self.inputs] + [p.id for p in self.outputs]
