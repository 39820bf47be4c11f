"""Foscam's IO alarm mapped onto the device's first input and first output.

A Foscam camera has one alarm input and one alarm output (relay). camio maps them onto the
first input and the first output in terminal order (:meth:`Device.port_ids`):

* ``isEnable`` is the input's ``enabled``; ``alarmLevel`` its normal state: 0 (low: alarm
  when the contact closes to ground) = normal ``open``, 1 (high) = normal ``closed``.
* ``schedule0..6`` is the input's arming schedule (see :mod:`.schedule`); all day = no
  arming schedule (always armed). A different week is stored as the schedule
  ``foscam-io-arming``, owned by the dialect.
* ``linkage`` bit 4 (the IO alarm output) is the rule ``foscam-io-linkage``, owned by the
  dialect: while the input is in alarm (and armed), the relay is held active; it is released
  when the alarm ends, or by ``clearIOAlarmOutput``. ``triggerInterval`` (seconds) is the rule's
  wait between actions. The other linkage bits (ring, mail, snapshot, record, cloud, push) are
  not implemented and refused.
* ``getDevState`` ``IOAlarm``: 0 = the input is off (or absent), 2 = in alarm and armed,
  1 = otherwise.

setIOAlarmConfig changes the input, the schedule, the rule and the dialect's own settings in one
configuration edit (one revision; nothing changes when any part is invalid).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from camio.core.ports import InputConfig
from camio.dialects.foscam.common import CommandError, Fields, Result
from camio.dialects.foscam.schedule import (
    ALL_DAY,
    ALWAYS,
    DAYS,
    ScheduleUnmappable,
    Week,
    sample,
    to_schedule,
)
from camio.engine.device import Device
from camio.engine.errors import NotFound

#: The rule that makes the relay follow the input alarm (linkage bit 4).
RULE_ID = "foscam-io-linkage"
RULE_NAME = "Foscam IO alarm output"
#: The arming schedule written by setIOAlarmConfig when it is not "all day".
SCHEDULE_ID = "foscam-io-arming"
SCHEDULE_NAME = "Foscam IO alarm schedule"

LINKAGE_OUTPUT = 1 << 4
#: Largest linkage value accepted as a number (bits 0-7 are documented).
LINKAGE_MAX = 0xFF
_LINKAGE_NAMES = {
    0: "ring",
    1: "send mail",
    2: "snap picture",
    3: "record",
    5: "cloud",
    6: "cloud",
    7: "push to phone",
}


@dataclass(frozen=True, slots=True)
class IoPorts:
    """The camio ports behind Foscam's alarm input and output (None when absent)."""

    input_id: str | None
    output_id: str | None

    @property
    def complete(self) -> bool:
        return self.input_id is not None and self.output_id is not None


def io_ports(device: Device) -> IoPorts:
    ids = device.port_ids()
    first_in = next((p for p in ids if p in device.inputs), None)
    first_out = next((p for p in ids if p in device.outputs), None)
    return IoPorts(first_in, first_out)


def io_alarm_state(device: Device) -> int:
    """``IOAlarm`` of getDevState: 0 off, 1 no alarm, 2 alarm."""
    input_id = io_ports(device).input_id
    if input_id is None:
        return 0
    port = device.input(input_id)
    if not port.config.enabled:
        return 0
    return 2 if port.active and port.armed else 1


def _input_config(device: Device, input_id: str) -> InputConfig:
    return device.input(input_id).config


def _linkage_rule_on(device: Device, ports: IoPorts) -> bool:
    try:
        rule = device.rule(RULE_ID)
    except NotFound:
        return False
    return rule.enabled


def _week(device: Device, cfg: InputConfig) -> Week:
    if cfg.arming_schedule is None:
        return ALWAYS
    try:
        schedule = device.schedule(cfg.arming_schedule)
    except NotFound:
        return (0,) * DAYS
    return sample(schedule, device.clock.wall_ns())


def get_config(device: Device) -> Fields:
    """The fields of ``getIOAlarmConfig``; CommandError when the device has no input."""
    ports = io_ports(device)
    if ports.input_id is None:
        raise CommandError(Result.ACCESS_DENIED, "this device has no alarm input")
    cfg = _input_config(device, ports.input_id)
    foscam = device.config.dialects.foscam
    trigger_interval = foscam.io_trigger_interval
    linkage = 0
    if _linkage_rule_on(device, ports):
        linkage |= LINKAGE_OUTPUT
        trigger_interval = device.rule(RULE_ID).wait_between_actions_ms // 1000
    week = _week(device, cfg)
    fields: list[tuple[str, object]] = [
        ("isEnable", int(cfg.enabled)),
        ("linkage", linkage),
        ("alarmLevel", 1 if cfg.normal_state == "closed" else 0),
        ("snapInterval", foscam.io_snap_interval),
        ("triggerInterval", trigger_interval),
    ]
    fields += [(f"schedule{day}", bits) for day, bits in enumerate(week)]
    return fields


# -- setIOAlarmConfig ------------------------------------------------------------------------


def _int_param(params: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    text = raw.strip()
    if not text.lstrip("-").isdigit() or len(text) > 20:
        raise CommandError(Result.FORMAT_ERROR, f"{name} must be an integer")
    value = int(text)
    if not low <= value <= high:
        raise CommandError(Result.FORMAT_ERROR, f"{name} must be between {low} and {high}")
    return value


@dataclass(frozen=True, slots=True)
class IoAlarmRequest:
    """The parameters of setIOAlarmConfig; None = keep the current value."""

    is_enable: int | None
    linkage: int | None
    alarm_level: int | None
    snap_interval: int | None
    trigger_interval: int | None
    schedule: tuple[int | None, ...]

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> IoAlarmRequest:
        linkage = _int_param(params, "linkage", 0, LINKAGE_MAX)
        if linkage is not None and linkage & ~LINKAGE_OUTPUT:
            names = sorted(
                {_LINKAGE_NAMES[b] for b in _LINKAGE_NAMES if linkage & (1 << b)},
            )
            raise CommandError(
                Result.EXECUTE_FAILED,
                f"linkage {linkage}: only bit 4 (IO alarm output, 16) is implemented; "
                f"not {', '.join(names)}",
            )
        return cls(
            is_enable=_int_param(params, "isEnable", 0, 1),
            linkage=linkage,
            alarm_level=_int_param(params, "alarmLevel", 0, 1),
            snap_interval=_int_param(params, "snapInterval", 0, 3600),
            trigger_interval=_int_param(params, "triggerInterval", 0, 3600),
            schedule=tuple(_int_param(params, f"schedule{d}", 0, ALL_DAY) for d in range(DAYS)),
        )


def _schedule_in_use(data: dict[str, Any], schedule_id: str, input_id: str) -> bool:
    """Whether anything but the input ``input_id`` refers to schedule ``schedule_id``."""
    for inp in data["inputs"]:
        if inp["id"] != input_id and inp.get("arming_schedule") == schedule_id:
            return True
    for out in data["outputs"]:
        if out.get("timed_schedule") == schedule_id:
            return True
    for rule in data["rules"]:
        for cond in rule["conditions"]:
            if cond.get("kind") == "schedule" and cond.get("schedule") == schedule_id:
                return True
    return False


def _replace(items: list[dict[str, Any]], item: dict[str, Any]) -> None:
    for index, existing in enumerate(items):
        if existing["id"] == item["id"]:
            items[index] = item
            return
    items.append(item)


def set_config(device: Device, request: IoAlarmRequest) -> dict[str, object]:
    """Apply setIOAlarmConfig in one configuration edit; returns what changed (for audit).

    Raises CommandError when the device lacks the ports or a value cannot be mapped, and lets
    the Device's own errors (an invalid configuration) through.
    """
    ports = io_ports(device)
    if ports.input_id is None:
        raise CommandError(Result.ACCESS_DENIED, "this device has no alarm input")
    input_id = ports.input_id
    cfg = _input_config(device, input_id)
    foscam = device.config.dialects.foscam
    current_week = _week(device, cfg)
    week: Week = tuple(
        cur if new is None else new for cur, new in zip(current_week, request.schedule, strict=True)
    )
    new_schedule: dict[str, object] | None = None
    arming: str | None = cfg.arming_schedule
    if week != current_week:
        if week == ALWAYS:
            arming = None
        else:
            try:
                new_schedule = to_schedule(
                    week,
                    schedule_id=SCHEDULE_ID,
                    name=SCHEDULE_NAME,
                    timezone=device.config.device.timezone,
                )
            except ScheduleUnmappable as exc:
                raise CommandError(Result.EXECUTE_FAILED, str(exc)) from None
            arming = SCHEDULE_ID
    rule_on = _linkage_rule_on(device, ports)
    # Without a linkage parameter the rule stays as it is (even when disabled in camio).
    want_rule = rule_on if request.linkage is None else bool(request.linkage & LINKAGE_OUTPUT)
    keep_rule = request.linkage is None and not rule_on
    if want_rule and ports.output_id is None:
        raise CommandError(Result.EXECUTE_FAILED, "this device has no alarm output")
    trigger_interval = (
        foscam.io_trigger_interval if request.trigger_interval is None else request.trigger_interval
    )
    if request.trigger_interval is None and rule_on:
        trigger_interval = device.rule(RULE_ID).wait_between_actions_ms // 1000
    snap_interval = (
        foscam.io_snap_interval if request.snap_interval is None else request.snap_interval
    )

    def edit(data: dict[str, Any]) -> None:
        for inp in data["inputs"]:
            if inp["id"] == input_id:
                if request.is_enable is not None:
                    inp["enabled"] = bool(request.is_enable)
                if request.alarm_level is not None:
                    inp["normal_state"] = "closed" if request.alarm_level else "open"
                inp["arming_schedule"] = arming
        if new_schedule is not None:
            _replace(data["schedules"], new_schedule)
        elif arming != SCHEDULE_ID and not _schedule_in_use(data, SCHEDULE_ID, input_id):
            data["schedules"] = [s for s in data["schedules"] if s["id"] != SCHEDULE_ID]
        if want_rule:
            assert ports.output_id is not None
            _replace(
                data["rules"],
                {
                    "id": RULE_ID,
                    "name": RULE_NAME,
                    "enabled": True,
                    "conditions": [{"kind": "input", "port": input_id, "require_armed": True}],
                    "action_mode": "while_active",
                    "wait_between_actions_ms": trigger_interval * 1000,
                    "action": {"kind": "set_output", "port": ports.output_id, "active": True},
                },
            )
        elif not keep_rule:
            data["rules"] = [r for r in data["rules"] if r["id"] != RULE_ID]
        section = data["dialects"]["foscam"]
        section["io_trigger_interval"] = trigger_interval
        section["io_snap_interval"] = snap_interval

    device.edit_config(edit)
    return {
        "input": input_id,
        "output": ports.output_id if want_rule else None,
        "rule": RULE_ID if want_rule else None,
        "arming_schedule": arming,
    }
