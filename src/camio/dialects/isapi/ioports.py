"""``/ISAPI/System/IO``: the alarm inputs and outputs, their status, configuration and trigger.

Ids are 1-based per direction (:mod:`camio.dialects.isapi.numbering`). The mapping onto the
device's ports:

* input ``triggering`` ``low`` = normally open (the alarm is the contact closing and pulling the
  line low) = ``normal_state: open``; ``high`` = normally closed = ``normal_state: closed``;
  ``enabled`` = the port's ``enabled``; ``inputName`` = its name;
* output ``PowerOnState``: ``defaultState`` ``high``/``low`` = ``power_on: on``/``off``
  (``restore`` reads as ``low``, and a ``low`` written back keeps ``restore``);
  ``outputState`` ``high`` = ``active_state: closed`` (the relay closes when triggered),
  ``low`` = ``active_state: open``, ``pulse`` = ``mode: pulse``; ``pulseDuration`` (ms, the
  "delay" of the web page) = ``alarm_time_ms`` (0 = until stopped);
* ``ioState`` ``active``/``inactive`` = the port's ``active``;
* ``PUT /outputs/<id>/trigger`` ``high`` starts the output (until ``low``), ``low`` stops it.

Configuration changes go through :meth:`Device.patch_port`, validated as a whole: a request
with one bad value changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from camio.api.spec import spec
from camio.dialects.isapi.common import (
    DIALECT,
    Children,
    bad_parameters,
    boolean,
    caller,
    cause,
    child,
    child_text,
    choice,
    device_of,
    document,
    expect_root,
    from_device_error,
    handled,
    parse_xml,
    read_body,
    response_status,
    xml_response,
)
from camio.dialects.isapi.numbering import Direction, HikNumbering, HikPort
from camio.engine.device import Device
from camio.engine.errors import DeviceError
from camio.lazy import LazyModule
from camio.store.users import Role

if TYPE_CHECKING:
    from lxml import etree
else:  # lxml loads on the first ISAPI request, not with the daemon
    etree = LazyModule("lxml.etree")

routes = web.RouteTableDef()

_PREFIX = "/ISAPI/System/IO"


def _find(request: web.Request, direction: Direction) -> HikPort:
    try:
        return HikNumbering(device_of(request)).find(direction, request.match_info["id"])
    except DeviceError as exc:
        raise from_device_error(exc) from None


# -- documents ---------------------------------------------------------------------------------


def input_fields(device: Device, port: HikPort) -> Children:
    config = device.input(port.port_id).config
    return [
        ("id", str(port.hik_id)),
        ("enabled", "true" if config.enabled else "false"),
        ("triggering", "low" if config.normal_state == "open" else "high"),
        ("inputName", config.name),
    ]


def output_fields(device: Device, port: HikPort) -> Children:
    config = device.output(port.port_id).config
    if config.mode.value == "pulse":
        output_state = "pulse"
    else:
        output_state = "high" if config.active_state == "closed" else "low"
    return [
        ("id", str(port.hik_id)),
        ("outputName", config.name),
        (
            "PowerOnState",
            [
                ("defaultState", "high" if config.power_on.value == "on" else "low"),
                ("outputState", output_state),
                ("pulseDuration", str(config.alarm_time_ms)),
            ],
        ),
    ]


def status_fields(device: Device, port: HikPort) -> Children:
    active = bool(device.port_status(port.port_id, dump_config=False)["active"])
    return [
        ("ioPortID", str(port.hik_id)),
        ("ioPortType", port.direction),
        ("ioState", "active" if active else "inactive"),
    ]


# -- reading a configuration -------------------------------------------------------------------


def _common_patch(root: etree._Element, port: HikPort, name_tag: str) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    given_id = child_text(root, "id")
    if given_id is not None and given_id != str(port.hik_id):
        raise bad_parameters(f"the id {given_id[:16]!r} is not the id of the URL")
    name = child_text(root, name_tag)
    if name is None:
        name = child_text(root, "name")
    if name is not None:
        if not 1 <= len(name) <= 64:
            raise bad_parameters("a port name has 1 to 64 characters")
        patch["name"] = name
    return patch


def input_patch(root: etree._Element, port: HikPort) -> dict[str, Any]:
    expect_root(root, "IOInputPort")
    patch = _common_patch(root, port, "inputName")
    enabled = child_text(root, "enabled")
    if enabled is not None:
        patch["enabled"] = boolean(enabled, "enabled")
    triggering = child_text(root, "triggering")
    if triggering is not None:
        level = choice(triggering.lower(), ("high", "low"), "triggering")
        patch["normal_state"] = "open" if level == "low" else "closed"
    return patch


def output_patch(root: etree._Element, port: HikPort, device: Device) -> dict[str, Any]:
    expect_root(root, "IOOutputPort")
    patch = _common_patch(root, port, "outputName")
    power = child(root, "PowerOnState")
    if power is None:
        return patch
    current = device.output(port.port_id).config
    default_state = child_text(power, "defaultState")
    if default_state is not None:
        level = choice(default_state.lower(), ("high", "low"), "defaultState")
        if level == "high":
            patch["power_on"] = "on"
        elif current.power_on.value != "restore":  # restore reads as low: keep it
            patch["power_on"] = "off"
    output_state = child_text(power, "outputState")
    if output_state is not None:
        state = choice(output_state.lower(), ("high", "low", "pulse"), "outputState")
        if state == "pulse":
            patch["mode"] = "pulse"
        else:
            patch["mode"] = "switch"
            patch["active_state"] = "closed" if state == "high" else "open"
    duration = child_text(power, "pulseDuration")
    if duration is not None:
        if not (duration.isascii() and duration.isdigit()) or int(duration) > 86_400_000:
            raise bad_parameters("pulseDuration is a number of ms from 0 to 86400000")
        patch["alarm_time_ms"] = int(duration)
    return patch


def _apply(request: web.Request, port: HikPort, patch: dict[str, Any]) -> web.Response:
    device = device_of(request)
    if patch:
        try:
            device.patch_port(port.port_id, patch)
        except DeviceError as exc:
            raise bad_parameters(str(exc)) from None
    return response_status(request)


# -- routes ------------------------------------------------------------------------------------


@routes.get(f"{_PREFIX}/inputs")
@spec("ISAPI: the alarm inputs (IOInputPortList)", role=Role.VIEWER, dialect=DIALECT)
@handled
async def list_inputs(request: web.Request) -> web.StreamResponse:
    caller(request, Role.VIEWER)
    device = device_of(request)
    ports = HikNumbering(device).inputs()
    items: Children = [("IOInputPort", input_fields(device, p)) for p in ports]
    return xml_response(document("IOInputPortList", items))


@routes.get(f"{_PREFIX}/inputs/{{id}}")
@spec("ISAPI: one alarm input's configuration", role=Role.VIEWER, dialect=DIALECT)
@handled
async def get_input(request: web.Request) -> web.StreamResponse:
    caller(request, Role.VIEWER)
    port = _find(request, "input")
    return xml_response(document("IOInputPort", input_fields(device_of(request), port)))


@routes.put(f"{_PREFIX}/inputs/{{id}}")
@spec("ISAPI: change an alarm input (enabled, triggering, name)", role=Role.ADMIN, dialect=DIALECT)
@handled
async def put_input(request: web.Request) -> web.StreamResponse:
    caller(request, Role.ADMIN)
    port = _find(request, "input")
    root = parse_xml(await read_body(request))
    return _apply(request, port, input_patch(root, port))


@routes.get(f"{_PREFIX}/inputs/{{id}}/status")
@spec("ISAPI: one alarm input's state", role=Role.VIEWER, dialect=DIALECT)
@handled
async def input_status(request: web.Request) -> web.StreamResponse:
    caller(request, Role.VIEWER)
    port = _find(request, "input")
    return xml_response(document("IOPortStatus", status_fields(device_of(request), port)))


@routes.get(f"{_PREFIX}/outputs")
@spec("ISAPI: the alarm outputs (IOOutputPortList)", role=Role.VIEWER, dialect=DIALECT)
@handled
async def list_outputs(request: web.Request) -> web.StreamResponse:
    caller(request, Role.VIEWER)
    device = device_of(request)
    ports = HikNumbering(device).outputs()
    items: Children = [("IOOutputPort", output_fields(device, p)) for p in ports]
    return xml_response(document("IOOutputPortList", items))


@routes.get(f"{_PREFIX}/outputs/{{id}}")
@spec("ISAPI: one alarm output's configuration", role=Role.VIEWER, dialect=DIALECT)
@handled
async def get_output(request: web.Request) -> web.StreamResponse:
    caller(request, Role.VIEWER)
    port = _find(request, "output")
    return xml_response(document("IOOutputPort", output_fields(device_of(request), port)))


@routes.put(f"{_PREFIX}/outputs/{{id}}")
@spec(
    "ISAPI: change an alarm output (name, power-on state, triggered level, delay)",
    role=Role.ADMIN,
    dialect=DIALECT,
)
@handled
async def put_output(request: web.Request) -> web.StreamResponse:
    caller(request, Role.ADMIN)
    port = _find(request, "output")
    root = parse_xml(await read_body(request))
    return _apply(request, port, output_patch(root, port, device_of(request)))


@routes.get(f"{_PREFIX}/outputs/{{id}}/status")
@spec("ISAPI: one alarm output's state", role=Role.VIEWER, dialect=DIALECT)
@handled
async def output_status(request: web.Request) -> web.StreamResponse:
    caller(request, Role.VIEWER)
    port = _find(request, "output")
    return xml_response(document("IOPortStatus", status_fields(device_of(request), port)))


@routes.put(f"{_PREFIX}/outputs/{{id}}/trigger")
@spec("ISAPI: switch an alarm output (IOPortData high/low)", role=Role.OPERATOR, dialect=DIALECT)
@handled
async def trigger_output(request: web.Request) -> web.StreamResponse:
    user = caller(request, Role.OPERATOR)
    port = _find(request, "output")
    root = parse_xml(await read_body(request))
    expect_root(root, "IOPortData")
    state = child_text(root, "outputState")
    if state is None:
        raise bad_parameters("outputState is missing")
    level = choice(state.lower(), ("high", "low"), "outputState")
    device_of(request).set_output(port.port_id, level == "high", cause(request, user))
    return response_status(request)


@routes.get(f"{_PREFIX}/status")
@spec("ISAPI: the state of every alarm input and output", role=Role.VIEWER, dialect=DIALECT)
@handled
async def io_status(request: web.Request) -> web.StreamResponse:
    caller(request, Role.VIEWER)
    device = device_of(request)
    numbering = HikNumbering(device)
    items: Children = [
        ("IOPortStatus", status_fields(device, p)) for p in numbering.inputs() + numbering.outputs()
    ]
    return xml_response(document("IOPortStatusList", items))
