"""configManager.cgi getConfig / setConfig for ``Alarm`` (inputs) and ``AlarmOut`` (outputs).

``getConfig&name=Alarm`` answers one ``table.Alarm[i].<Field>=value`` line per field of input
channel ``i``; ``name=AlarmOut`` the same for the outputs; ``name=General`` the machine name.

===================================  =====================================================
Dahua                                camio
===================================  =====================================================
``Alarm[i].Enable``                  input ``enabled``
``Alarm[i].Name``                    input ``name``
``Alarm[i].SensorType`` NO / NC      ``normal_state`` open / closed
``Alarm[i].EventHandler.Dejitter``   debounce, whole seconds (both directions)
``AlarmOut[i].Mode`` 0 / 1 / 2       automatic / manual Start / manual Stop (:mod:`.outmode`)
``AlarmOut[i].Name``                 output ``name``
``AlarmOut[i].AlarmOutLatch``        output ``alarm_time_ms``, whole seconds (0 = continuous)
===================================  =====================================================

``setConfig&Alarm[0].SensorType=NC&AlarmOut[0].Mode=1`` checks every pair before changing
anything: an unknown table, channel, field or value answers Error and nothing changes. A value
equal to what getConfig shows changes nothing (so writing back ``Dejitter=0`` does not wipe a
50 ms debounce). ``Mode`` alone needs the operator role; every other field the administrator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from camio.api.spec import spec
from camio.core.events import Cause
from camio.dialects.dahua.common import (
    DIALECT,
    DahuaError,
    action_of,
    bool_text,
    caller,
    cause,
    device_of,
    error,
    lines,
    ok,
    parse_bool,
)
from camio.dialects.dahua.identity import dahua_identity
from camio.dialects.dahua.numbering import input_ids, output_ids
from camio.dialects.dahua.outmode import apply_mode as apply_output_mode
from camio.dialects.dahua.outmode import current_mode, modes_of
from camio.engine.device import Device
from camio.engine.errors import DeviceError
from camio.store.users import Role

routes = web.RouteTableDef()

_KEY = re.compile(r"^(Alarm|AlarmOut)\[(\d{1,3})\]\.([A-Za-z.]+)$")
MAX_DEJITTER_S = 600
MAX_LATCH_S = 86_400


def _seconds(ms: int) -> int:
    return round(ms / 1000)


def alarm_table(device: Device) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for channel, pid in enumerate(input_ids(device)):
        cfg = device.inputs[pid].config
        prefix = f"table.Alarm[{channel}]"
        out += [
            (f"{prefix}.Enable", bool_text(cfg.enabled)),
            (f"{prefix}.EventHandler.Dejitter", _dejitter(device, pid)),
            (f"{prefix}.Name", cfg.name),
            (f"{prefix}.SensorType", "NO" if cfg.normal_state == "open" else "NC"),
        ]
    return out


def _dejitter(device: Device, pid: str) -> int:
    cfg = device.inputs[pid].config
    return _seconds(max(cfg.debounce_on_ms, cfg.debounce_off_ms))


def alarm_out_table(device: Device, modes: dict[str, int]) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for channel, pid in enumerate(output_ids(device)):
        cfg = device.outputs[pid].config
        prefix = f"table.AlarmOut[{channel}]"
        out += [
            (f"{prefix}.AlarmOutLatch", _seconds(cfg.alarm_time_ms)),
            (f"{prefix}.Mode", current_mode(device, modes, pid)),
            (f"{prefix}.Name", cfg.name),
        ]
    return out


@dataclass
class _Plan:
    """A checked setConfig: configuration patches per camio port, output modes to apply."""

    patches: dict[str, dict[str, Any]]
    modes: list[tuple[str, int]]


def _integer(value: str, low: int, high: int) -> int:
    text = value.strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise DahuaError(f"expected {low}..{high}")
    return int(text)


def _name(value: str) -> str:
    if not 1 <= len(value) <= 64 or any(ord(c) < 32 for c in value):
        raise DahuaError("bad name")
    return value


def _plan(device: Device, modes: dict[str, int], pairs: list[tuple[str, str]]) -> _Plan:
    plan = _Plan({}, [])
    inputs, outputs = input_ids(device), output_ids(device)
    if not pairs:
        raise DahuaError("nothing to set")
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            raise DahuaError(f"unknown key {key[:40]!r}")
        table, channel, field = match.group(1), int(match.group(2)), match.group(3)
        ids = inputs if table == "Alarm" else outputs
        if channel >= len(ids):
            raise DahuaError(f"no channel {channel}")
        pid = ids[channel]
        patch = plan.patches.setdefault(pid, {})
        if table == "Alarm":
            in_cfg = device.inputs[pid].config
            if field == "Enable":
                patch["enabled"] = parse_bool(value)
            elif field == "Name":
                patch["name"] = _name(value)
            elif field == "SensorType":
                if value not in ("NO", "NC"):
                    raise DahuaError("SensorType is NO or NC")
                patch["normal_state"] = "open" if value == "NO" else "closed"
            elif field == "EventHandler.Dejitter":
                seconds = _integer(value, 0, MAX_DEJITTER_S)
                if seconds != _dejitter(device, pid):
                    patch["debounce_on_ms"] = patch["debounce_off_ms"] = seconds * 1000
            else:
                raise DahuaError(f"unknown field {field[:40]!r}")
            for name in list(patch):
                if getattr(in_cfg, name) == patch[name]:
                    del patch[name]
        else:
            out_cfg = device.outputs[pid].config
            if field == "Mode":
                mode = _integer(value, 0, 2)
                if not out_cfg.enabled:
                    raise DahuaError(f"output channel {channel} is disabled")
                plan.modes.append((pid, mode))
            elif field == "Name":
                patch["name"] = _name(value)
            elif field == "AlarmOutLatch":
                seconds = _integer(value, 0, MAX_LATCH_S)
                if seconds != _seconds(out_cfg.alarm_time_ms):
                    patch["alarm_time_ms"] = seconds * 1000
            else:
                raise DahuaError(f"unknown field {field[:40]!r}")
            for name in list(patch):
                if getattr(out_cfg, name) == patch[name]:
                    del patch[name]
        if not patch:
            del plan.patches[pid]
    return plan


def _apply(device: Device, modes: dict[str, int], plan: _Plan, who: Cause) -> None:
    if plan.patches:

        def edit(data: dict[str, Any]) -> None:
            for section in ("inputs", "outputs"):
                for port in data[section]:
                    port.update(plan.patches.get(port["id"], {}))

        device.edit_config(edit)
    for pid, mode in plan.modes:
        apply_output_mode(device, modes, pid, mode, who)


@routes.get("/cgi-bin/configManager.cgi")
@spec(
    "Dahua configManager.cgi: getConfig / setConfig of Alarm and AlarmOut",
    role=Role.VIEWER,
    dialect=DIALECT,
    content_type="text/plain",
)
async def config_manager(request: web.Request) -> web.Response:
    device = device_of(request)
    modes = modes_of(request.app)
    try:
        action = action_of(request)
        if action == "getConfig":
            caller(request, Role.VIEWER)
            name = request.query.get("name", "")
            if name == "Alarm":
                return lines(alarm_table(device))
            if name == "AlarmOut":
                return lines(alarm_out_table(device, modes))
            if name == "General":
                identity = dahua_identity(device.config.device)
                return lines([("table.General.MachineName", identity.machine_name)])
            raise DahuaError("unknown config")
        if action == "setConfig":
            pairs = [(k, v) for k, v in request.query.items() if k != "action"]
            plan = _plan(device, modes, pairs)
            only_modes = all(_KEY.match(k) and k.endswith("].Mode") for k, _ in pairs)
            user = caller(request, Role.OPERATOR if only_modes else Role.ADMIN)
            _apply(device, modes, plan, cause(request, user))
            return ok()
        raise DahuaError("unknown action")
    except (DahuaError, DeviceError):
        return error()
