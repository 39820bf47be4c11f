"""I/O port management (``io/portmanagement.cgi``): getPorts, setPorts, setStateSequence.

``state`` and ``normalState`` are circuits (``open``/``closed``). For an output the normal
state is its idle circuit, so with camio's default valid signal (``closed``) an output reads
``normalState: open`` and ``close`` switches it on, as Home Assistant expects. setPorts takes
both body shapes (``params.ports`` list, and the bare ``params`` list of axis v60). Everything in
a request is checked before anything changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from camio.api.spec import spec
from camio.core.ports import StateSequence, StateStep
from camio.dialects.vapix import jsonapi
from camio.dialects.vapix.common import DIALECT, caller, cause, device_of, numbering
from camio.dialects.vapix.numbering import AxisPort
from camio.engine.device import Device
from camio.engine.errors import DeviceError, NotFound
from camio.store.users import Role

routes = web.RouteTableDef()

_CIRCUITS = ("open", "closed")
_MAX_PORTS = 256


def port_item(device: Device, port: AxisPort) -> dict[str, Any]:
    """One getPorts item (every key the axis library reads is always present)."""
    status = device.port_status(port.port_id, dump_config=False)
    circuit = "closed" if status["circuit"] in ("closed", "short") else "open"
    if port.direction == "input":
        normal = status["normal_state"]
    else:
        normal = "open" if status["active_state"] == "closed" else "closed"
    return {
        "port": str(port.axis_id),
        "configurable": False,
        "usage": "",
        "name": status["name"],
        "direction": port.direction,
        "state": circuit,
        "normalState": normal,
        "readonly": False,
    }


def _bad(port: str, name: str, message: str) -> jsonapi.ApiError:
    return jsonapi.ApiError(
        jsonapi.INVALID_PARAMETER, message, {"port": port, "propertyName": name}
    )


@dataclass
class _Plan:
    config: dict[str, dict[str, Any]] = field(default_factory=dict)
    states: list[tuple[str, bool]] = field(default_factory=list)
    ports: list[str] = field(default_factory=list)


def _plan_set_ports(device: Device, request: web.Request, params: Any) -> _Plan:
    items = params.get("ports") if isinstance(params, dict) else params
    if not isinstance(items, list) or not items:
        raise jsonapi.ApiError(jsonapi.MISSING_PARAMETER, "ports is missing")
    if len(items) > _MAX_PORTS:
        raise jsonapi.ApiError(jsonapi.INVALID_PARAMETER, "too many ports")
    plan = _Plan()
    axis = numbering(request)
    for item in items:
        if not isinstance(item, dict):
            raise jsonapi.ApiError(jsonapi.INVALID_PARAMETER, "a port must be an object")
        port_text = item.get("port")
        if port_text is None:
            raise jsonapi.ApiError(jsonapi.MISSING_PARAMETER, "port is missing")
        key = str(port_text)[:16]
        try:
            port = axis.by_axis_id(key) if isinstance(port_text, (str, int)) else None
        except NotFound:
            port = None
        if port is None or isinstance(port_text, bool):
            raise _bad(key, "port", f"no port {key!r}")
        patch: dict[str, Any] = {}
        for name, value in item.items():
            if name == "port":
                continue
            if name == "state":
                if value not in _CIRCUITS:
                    raise _bad(key, name, "state must be open or closed")
                if port.direction != "output":
                    raise _bad(key, name, "the state of an input cannot be set")
                out = device.output(port.port_id).config
                if not out.enabled:
                    raise _bad(key, name, "the output is disabled")
                plan.states.append((port.port_id, value == out.active_state))
            elif name == "name":
                if not isinstance(value, str) or not 1 <= len(value) <= 64:
                    raise _bad(key, name, "name must be 1 to 64 characters")
                patch["name"] = value
            elif name == "normalState":
                if value not in _CIRCUITS:
                    raise _bad(key, name, "normalState must be open or closed")
                if port.direction == "input":
                    patch["normal_state"] = value
                else:  # an output's normal state is its idle circuit
                    patch["active_state"] = "closed" if value == "open" else "open"
            elif name == "direction":
                if value != port.direction:
                    raise _bad(key, name, "the direction of this port is fixed")
            elif name == "usage":
                if value != "":
                    raise _bad(key, name, "usage is not configurable")
            else:
                raise _bad(key, str(name)[:32], f"unknown property {str(name)[:32]!r}")
        if patch:
            plan.config.setdefault(port.port_id, {}).update(patch)
        plan.ports.append(str(port.axis_id))
    return plan


def _apply_config(device: Device, patches: dict[str, dict[str, Any]]) -> None:
    def edit(data: dict[str, Any]) -> None:
        for section in ("inputs", "outputs"):
            for port in data[section]:
                if port["id"] in patches:
                    port.update(patches[port["id"]])

    device.edit_config(edit)


def _set_ports(request: web.Request, params: Any) -> dict[str, Any]:
    device = device_of(request)
    user = caller(request, Role.OPERATOR)
    plan = _plan_set_ports(device, request, params)
    if plan.config:
        user = caller(request, Role.ADMIN)
        try:
            _apply_config(device, plan.config)
        except DeviceError as exc:
            raise jsonapi.ApiError(jsonapi.INVALID_PARAMETER, str(exc)[:200]) from None
    who = cause(request, user)
    for port_id, active in plan.states:
        device.set_output(port_id, active, who)
    return {"ports": plan.ports}


def _set_state_sequence(request: web.Request, params: Any) -> dict[str, Any]:
    device = device_of(request)
    user = caller(request, Role.OPERATOR)
    if not isinstance(params, dict) or "port" not in params or "sequence" not in params:
        raise jsonapi.ApiError(jsonapi.MISSING_PARAMETER, "port and sequence are required")
    key = str(params["port"])[:16]
    try:
        port = numbering(request).by_axis_id(key)
    except NotFound:
        raise _bad(key, "port", f"no port {key!r}") from None
    if port.direction != "output":
        raise _bad(key, "port", "a sequence runs on an output")
    status = device.port_status(port.port_id, dump_config=False)
    if status["sequence_running"]:
        raise _bad(key, "sequence", "a sequence is already running on this port")
    if not status["enabled"]:
        raise _bad(key, "port", "the output is disabled")
    active_state = status["active_state"]
    sequence = params["sequence"]
    if not isinstance(sequence, list) or not sequence:
        raise _bad(key, "sequence", "sequence must be a non-empty list")
    steps: list[StateStep] = []
    for step in sequence:
        if not isinstance(step, dict) or step.get("state") not in _CIRCUITS:
            raise _bad(key, "state", "each step needs state open or closed")
        ms = step.get("time")
        if not isinstance(ms, int) or isinstance(ms, bool) or not 0 <= ms <= 3_600_000:
            raise _bad(key, "time", "time must be 0 to 3600000 ms")
        steps.append(StateStep(active=step["state"] == active_state, duration_ms=ms))
    try:
        StateSequence(steps=steps)
    except ValidationError as exc:
        message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise _bad(key, "sequence", message) from None
    device.run_sequence(port.port_id, steps, cause(request, user))
    return {"port": key}


async def _dispatch(request: web.Request, req: jsonapi.JsonRequest) -> dict[str, Any]:
    if req.method == "getPorts":
        caller(request, Role.VIEWER)
        device = device_of(request)
        items = [port_item(device, port) for port in numbering(request).ports()]
        data: dict[str, Any] = {"numberOfPorts": len(items)}
        if items:
            data["items"] = items
        return data
    if req.method == "setPorts":
        return _set_ports(request, req.params)
    if req.method == "setStateSequence":
        return _set_state_sequence(request, req.params)
    raise jsonapi.ApiError(jsonapi.METHOD_NOT_SUPPORTED)


@routes.post("/axis-cgi/io/portmanagement.cgi")
@spec("VAPIX I/O port management (JSON)", role=Role.VIEWER, dialect=DIALECT)
async def portmanagement(request: web.Request) -> web.Response:
    return await jsonapi.handle(request, ("1.0",), _dispatch)
