"""Routes for ports, manual control, sequences, virtual inputs, the manual trigger and the
simulator."""

from __future__ import annotations

from aiohttp import web

from camio.api.context import caller, cause_of, device_of
from camio.api.errors import BadRequest, field_errors, read_object, summary
from camio.api.models import (
    CircuitBody,
    FaultBody,
    InputPatch,
    ManualTriggerBody,
    OutputPatch,
    PortPatch,
    PortStateBody,
    SequenceBody,
    VirtualInputBody,
    parse_body,
)
from camio.api.schemas import (
    ManualTriggerState,
    ManualTriggerStatus,
    Port,
    PortList,
    SimInputStatus,
    VirtualInputList,
    VirtualInputStatus,
    respond,
)
from camio.api.spec import spec
from camio.core.ports import Circuit
from camio.engine.errors import InvalidRequest, NotFound
from camio.store.users import Role

routes = web.RouteTableDef()


@routes.get("/api/v1/ports")
@spec(
    "Every port with its state and configuration, in terminal order",
    role=Role.VIEWER,
    response=PortList,
)
async def list_ports(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    # The hot path: each port's configuration goes in as its model (no dump and
    # re-validation); pydantic-core validates the rest and writes the JSON.
    return respond(PortList, {"ports": device_of(request).ports_status(dump_config=False)})


def _port(request: web.Request, port_id: str) -> web.Response:
    return respond(Port, device_of(request).port_status(port_id, dump_config=False))


@routes.get("/api/v1/ports/{id}")
@spec("One port", role=Role.VIEWER, response=Port)
async def get_port(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    device = device_of(request)
    port_id = request.match_info["id"]
    if port_id not in device.inputs and port_id not in device.outputs:
        raise NotFound(f"no port {port_id!r}")
    return _port(request, port_id)


@routes.patch("/api/v1/ports/{id}")
@spec("Change configuration fields of a port", role=Role.ADMIN, body=PortPatch, response=Port)
async def patch_port(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    device = device_of(request)
    port_id = request.match_info["id"]
    if port_id not in device.inputs and port_id not in device.outputs:
        raise NotFound(f"no port {port_id!r}")
    patch = await read_object(request)
    # The body model first (its errors name the fields as sent), then the whole document.
    (InputPatch if port_id in device.inputs else OutputPatch).model_validate(patch)
    try:
        device.patch_port(port_id, patch)
        return _port(request, port_id)
    except InvalidRequest as exc:
        details = getattr(exc, "errors", None)
        if not isinstance(details, list) or not details:
            raise
        # Name the fields as the client sent them ("normal_state"), not by their place in the
        # whole configuration document ("inputs.1.normal_state").
        section = "inputs" if port_id in device.inputs else "outputs"
        ids = [p.id for p in getattr(device.config, section)]
        prefix = f"{section}.{ids.index(port_id)}." if port_id in ids else None
        errors = field_errors(details)
        for error in errors:
            if prefix and error["field"].startswith(prefix):
                error["field"] = error["field"].removeprefix(prefix)
        raise BadRequest(summary(errors), status=422, errors=errors) from None


@routes.put("/api/v1/ports/{id}/state")
@spec(
    "Manual control of an output: start (for duration_ms, else continuous) or stop",
    role=Role.OPERATOR,
    body=PortStateBody,
    response=Port,
)
async def put_port_state(request: web.Request) -> web.Response:
    user = caller(request, Role.OPERATOR)
    device = device_of(request)
    port_id = request.match_info["id"]
    if port_id in device.inputs:
        raise web.HTTPConflict(
            text='{"error": "conflict", "message": "an input cannot be driven; use the '
            'simulator endpoint /api/v1/sim/ports/{id}/circuit"}',
            content_type="application/json",
        )
    body = parse_body(PortStateBody, await read_object(request))
    device.set_output(port_id, body.active, cause_of(request, user), duration_ms=body.duration_ms)
    return _port(request, port_id)


@routes.post("/api/v1/ports/{id}/sequence")
@spec("Run a state sequence on an output", role=Role.OPERATOR, body=SequenceBody, response=Port)
async def post_sequence(request: web.Request) -> web.Response:
    user = caller(request, Role.OPERATOR)
    device = device_of(request)
    port_id = request.match_info["id"]
    device.output(port_id)
    body = parse_body(SequenceBody, await read_object(request))
    device.run_sequence(port_id, body.steps, cause_of(request, user))
    return _port(request, port_id)


def _sim_port(request: web.Request, port_id: str) -> web.Response:
    device = device_of(request)
    status = device.port_status(port_id, dump_config=False)
    status["sim"] = device.simulation.describe(port_id)  # the wire, before debounce
    return respond(SimInputStatus, status)


@routes.post("/api/v1/sim/ports/{id}/circuit")
@spec(
    "Simulator: set the circuit of an input's wire",
    role=Role.OPERATOR,
    body=CircuitBody,
    response=SimInputStatus,
)
async def post_circuit(request: web.Request) -> web.Response:
    caller(request, Role.OPERATOR)
    device = device_of(request)
    port_id = request.match_info["id"]
    device.input(port_id)
    body = parse_body(CircuitBody, await read_object(request))
    device.sim_set_circuit(port_id, Circuit(body.circuit))
    return _sim_port(request, port_id)


@routes.post("/api/v1/sim/ports/{id}/fault")
@spec(
    "Simulator: inject a fault on an input (bounce, stuck, cut, short, clear)",
    role=Role.OPERATOR,
    body=FaultBody,
    response=SimInputStatus,
)
async def post_fault(request: web.Request) -> web.Response:
    caller(request, Role.OPERATOR)
    device = device_of(request)
    port_id = request.match_info["id"]
    device.input(port_id)
    body = parse_body(FaultBody, await read_object(request))
    device.sim_fault(port_id, body.fault, **body.params())
    return _sim_port(request, port_id)


@routes.get("/api/v1/virtual-inputs")
@spec("Virtual inputs 1-32", role=Role.VIEWER, response=VirtualInputList)
async def list_virtual_inputs(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    return respond(VirtualInputList, {"virtual_inputs": device_of(request).virtual_input_status()})


def _vinput_number(request: web.Request) -> int:
    raw = request.match_info["n"]
    if not (raw.isascii() and raw.isdigit()):  # "٣".isdigit() too
        raise NotFound(f"no virtual input {raw!r} (1-32)")
    return int(raw)


@routes.get("/api/v1/virtual-inputs/{n}")
@spec("One virtual input", role=Role.VIEWER, response=VirtualInputStatus)
async def get_virtual_input(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    number = _vinput_number(request)
    items = device_of(request).virtual_input_status()
    if not 1 <= number <= len(items):
        raise NotFound(f"no virtual input {number} (1-32)")
    return respond(VirtualInputStatus, items[number - 1])


@routes.put("/api/v1/virtual-inputs/{n}")
@spec(
    "Set a virtual input, optionally for duration_ms",
    role=Role.OPERATOR,
    body=VirtualInputBody,
    response=VirtualInputStatus,
)
async def put_virtual_input(request: web.Request) -> web.Response:
    user = caller(request, Role.OPERATOR)
    number = _vinput_number(request)
    device = device_of(request)
    if not 1 <= number <= len(device.virtual_inputs):
        raise NotFound(f"no virtual input {number} (1-32)")
    body = parse_body(VirtualInputBody, await read_object(request))
    device.set_virtual_input(
        number, body.active, cause_of(request, user), duration_ms=body.duration_ms
    )
    return respond(VirtualInputStatus, device.virtual_input_status()[number - 1])


@routes.get("/api/v1/triggers/manual")
@spec("The manual trigger", role=Role.VIEWER, response=ManualTriggerStatus)
async def get_manual(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    manual = device_of(request).manual
    return respond(
        ManualTriggerStatus,
        {"active": manual.active, "cause": manual.cause.to_dict() if manual.cause else None},
    )


@routes.put("/api/v1/triggers/manual")
@spec(
    "Switch the manual trigger on or off, or pulse it",
    role=Role.OPERATOR,
    body=ManualTriggerBody,
    response=ManualTriggerState,
)
async def put_manual(request: web.Request) -> web.Response:
    user = caller(request, Role.OPERATOR)
    device = device_of(request)
    body = parse_body(ManualTriggerBody, await read_object(request))
    cause = cause_of(request, user, "manual")
    if body.pulse:
        device.pulse_manual_trigger(cause)
    elif body.active is not None:
        device.set_manual_trigger(body.active, cause)
    else:
        raise web.HTTPUnprocessableEntity(
            text='{"error": "invalid", "message": "give \\"active\\" or \\"pulse\\": true"}',
            content_type="application/json",
        )
    return respond(ManualTriggerState, {"active": device.manual.active})
