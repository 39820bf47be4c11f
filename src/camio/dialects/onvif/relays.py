"""Digital inputs and relay outputs in ONVIF terms, shared by the Device and DeviceIO services.

Mapping onto camio's port semantics (both ways):

* token = the camio port id.
* Relay ``Mode``: ``Monostable`` = the output has an alarm time (``alarm_time_ms > 0``; the
  ``DelayTime`` is that time); ``Bistable`` = no alarm time (continuous until stopped;
  ``DelayTime`` reported as ``PT0S``).
* Relay ``IdleState``: the inverse of the output's valid signal (``active_state: closed`` ⇔
  ``IdleState open``, a normally-open relay).
* Digital input ``IdleState``: the input's normal state (``normal_state: open`` ⇔ ``open``).
* ``SetRelayOutputState active`` starts the output (for its alarm time when Monostable, else
  until stopped), ``inactive`` stops it; both through the Device facade with an ``api`` cause
  naming the ONVIF user.
"""

from __future__ import annotations

from typing import Any, Final

from lxml import etree

from camio.dialects.onvif.common import cause, device_errors, format_duration, parse_duration
from camio.dialects.onvif.soap import SoapFault, SoapRequest, el, text_of
from camio.engine.device import Device

#: Longest Monostable DelayTime (the output's alarm time is at most a day).
MAX_DELAY_S: Final = 86_400
MIN_DELAY_S: Final = 0.01


def _other(state: str) -> str:
    return "open" if state == "closed" else "closed"


def relay_properties(device: Device, port_id: str) -> etree._Element:
    cfg = device.output(port_id).config
    monostable = cfg.alarm_time_ms > 0
    return el(
        "tt:Properties",
        el("tt:Mode", "Monostable" if monostable else "Bistable"),
        el("tt:DelayTime", format_duration(cfg.alarm_time_ms / 1000)),
        el("tt:IdleState", _other(cfg.active_state)),
    )


def relay_outputs(device: Device, tag: str) -> list[etree._Element]:
    """One ``tag`` (``tds:RelayOutputs``) element per output, in terminal order."""
    return [
        el(tag, relay_properties(device, pid), token=pid)
        for pid in device.port_ids()
        if pid in device.outputs
    ]


def digital_inputs(device: Device) -> list[etree._Element]:
    return [
        el("tmd:DigitalInputs", token=pid, IdleState=device.input(pid).config.normal_state)
        for pid in device.port_ids()
        if pid in device.inputs
    ]


def _relay_token(device: Device, token: str | None) -> str:
    if not token or token not in device.outputs:
        raise SoapFault("no such relay output", subcodes=("ter:InvalidArgVal", "ter:RelayToken"))
    return token


def apply_settings(request: SoapRequest, token: str | None, props: etree._Element | None) -> None:
    """SetRelayOutputSettings: Mode/DelayTime/IdleState onto alarm time and valid signal."""
    device = request.device
    port_id = _relay_token(device, token)
    if props is None:
        raise SoapFault("Properties are missing")
    mode = text_of(props, "Mode")
    idle = text_of(props, "IdleState")
    delay_text = text_of(props, "DelayTime")
    patch: dict[str, Any] = {}
    if mode == "Monostable":
        if delay_text is None:
            raise SoapFault("a Monostable relay needs a DelayTime")
        delay = parse_duration(delay_text)
        if not MIN_DELAY_S <= delay <= MAX_DELAY_S:
            raise SoapFault(
                f"DelayTime must be between {MIN_DELAY_S} and {MAX_DELAY_S} seconds",
                subcodes=("ter:InvalidArgVal", "ter:ModeError"),
            )
        patch["alarm_time_ms"] = round(delay * 1000)
    elif mode == "Bistable":
        patch["alarm_time_ms"] = 0
    else:
        raise SoapFault(
            "Mode must be Monostable or Bistable", subcodes=("ter:InvalidArgVal", "ter:ModeError")
        )
    if idle not in ("open", "closed"):
        raise SoapFault("IdleState must be open or closed")
    patch["active_state"] = _other(idle)
    with device_errors("ter:RelayToken"):
        device.patch_port(port_id, patch)


def set_state(request: SoapRequest, token: str | None, state: str | None) -> None:
    """SetRelayOutputState: ``active`` / ``inactive``."""
    device = request.device
    port_id = _relay_token(device, token)
    if state not in ("active", "inactive"):
        raise SoapFault("LogicalState must be active or inactive")
    alarm_ms = device.output(port_id).config.alarm_time_ms
    with device_errors("ter:RelayToken"):
        if state == "active":
            device.set_output(port_id, True, cause(request), duration_ms=alarm_ms or None)
        else:
            device.set_output(port_id, False, cause(request))


def relay_options(device: Device, token: str | None) -> list[etree._Element]:
    ids = [p for p in device.port_ids() if p in device.outputs]
    if token:
        ids = [_relay_token(device, token)]
    return [
        el(
            "tmd:RelayOutputOptions",
            el("tmd:Mode", "Monostable"),
            el("tmd:Mode", "Bistable"),
            el("tmd:DelayTimes", f"{MIN_DELAY_S:g} {MAX_DELAY_S}"),
            el("tmd:Discrete", "false"),
            token=pid,
        )
        for pid in ids
    ]
