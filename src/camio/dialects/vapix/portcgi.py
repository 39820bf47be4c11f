"""port.cgi (VAPIX 3) and the older input.cgi / output.cgi (VAPIX 2).

port.cgi numbers all ports from 1 (``IOPort.I<n-1>``); input.cgi and output.cgi number the
inputs and the outputs separately from 1, in terminal order, as the old devices did.

* ``check=1,2`` -> ``port1=0`` per port: the circuit, 1 = closed;
* ``checkactive=3`` -> ``port3=active|inactive`` (after Input.Trig / Output.Active);
* ``checkdirection=1,3`` -> ``port1=input``;
* ``action=3:/300\\`` -> run the action language on an output (empty 200 reply);
* ``monitor=1,3`` -> ``multipart/x-mixed-replace; boundary=ioboundary``, one part per change
  (``1I:/`` input active, ``1I:\\`` inactive, ``3O:H`` output active, ``3O:L`` idle) and an
  empty part every 15 s so the connection stays alive.

Errors are one ``# Error:`` line with HTTP 400; nothing changes on a bad request (every
action of a request is checked before the first one runs).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Final

from aiohttp import web

from camio.api.spec import spec
from camio.core.events import Event, Topic
from camio.dialects.vapix.common import (
    DIALECT,
    caller,
    cause,
    cgi_params,
    device_of,
    error_text,
    numbering,
    text,
)
from camio.dialects.vapix.numbering import AxisPort
from camio.dialects.vapix.sequence import ActionError, PortAction, parse_action
from camio.engine.device import Device
from camio.engine.errors import DeviceError
from camio.store.users import Role

routes = web.RouteTableDef()

BOUNDARY: Final = "ioboundary"
#: Seconds between the empty keep-alive parts of a monitor stream.
KEEPALIVE_S: float = 15.0
#: How often a quiet monitor stream looks whether its client is still connected.
_POLL_S = 0.5
#: Open monitor streams per app, cancelled at shutdown.
MONITORS: Final = web.AppKey("vapix_monitors", set[asyncio.Task[None]])
#: Open monitor streams per device at most; more are refused with 503.
MAX_STREAMS = 64

Lookup = Callable[[str], AxisPort]


class CgiError(Exception):
    pass


def _numbers(value: str) -> list[str]:
    items = [item.strip() for item in value.split(",")]
    if not items or any(not item for item in items) or len(items) > 256:
        raise CgiError("expected a comma-separated list of port numbers")
    return items


def _lookup_all(request: web.Request) -> Lookup:
    axis = numbering(request)

    def find(number: str) -> AxisPort:
        try:
            return axis.by_cgi_number(number)
        except DeviceError:
            raise CgiError(f"invalid port number '{number[:16]}'") from None

    return find


def _lookup_direction(request: web.Request, direction: str) -> Lookup:
    ports = [p for p in numbering(request).ports() if p.direction == direction]

    def find(number: str) -> AxisPort:
        if not number.isdigit() or not 1 <= int(number) <= len(ports):
            raise CgiError(f"invalid {direction} number '{number[:16]}'")
        return ports[int(number) - 1]

    return find


def _circuit_bit(device: Device, port: AxisPort) -> str:
    circuit = device.port_status(port.port_id, dump_config=False)["circuit"]
    return "1" if circuit in ("closed", "short") else "0"


def _active(device: Device, port: AxisPort) -> bool:
    return bool(device.port_status(port.port_id, dump_config=False)["active"])


def _plan_actions(device: Device, find: Lookup, value: str) -> list[tuple[AxisPort, PortAction]]:
    plans: list[tuple[AxisPort, PortAction]] = []
    for item in value.split(","):
        try:
            action = parse_action(item.strip())
        except ActionError as exc:
            raise CgiError(f"invalid action: {exc}") from None
        port = find(str(action.number))
        if port.direction != "output":
            raise CgiError(f"port {action.number} is an input")
        if not device.output(port.port_id).config.enabled:
            raise CgiError(f"port {action.number} is disabled")
        try:
            action.state_steps(current=False)  # validates the total length
        except ActionError as exc:
            raise CgiError(f"invalid action: {exc}") from None
        plans.append((port, action))
    return plans


def _run(request: web.Request, plans: list[tuple[AxisPort, PortAction]]) -> None:
    device = device_of(request)
    who = cause(request, caller(request, Role.OPERATOR))
    for port, action in plans:
        immediate = action.immediate
        if immediate is not None:
            device.set_output(port.port_id, immediate, who)
        else:
            steps = action.state_steps(current=_active(device, port))
            device.run_sequence(port.port_id, steps, who)


async def _handle(
    request: web.Request, find: Lookup, prefix: Callable[[AxisPort, str], str]
) -> web.StreamResponse:
    params = await cgi_params(request)
    device = device_of(request)
    if not params:
        return error_text("no request parameter")
    try:
        actions = [v for k, v in params if k == "action"]
        if actions:
            if len(params) != len(actions):
                raise CgiError("action cannot be combined with other parameters")
            plans = [plan for value in actions for plan in _plan_actions(device, find, value)]
            _run(request, plans)
            return text("")
        monitors = [v for k, v in params if k == "monitor"]
        if monitors:
            ports = [find(n) for value in monitors for n in _numbers(value)]
            caller(request, Role.VIEWER)
            return await _monitor(request, ports)
        caller(request, Role.VIEWER)
        lines: list[str] = []
        for key, value in params:
            for number in _numbers(value):
                port = find(number)
                label = prefix(port, number)
                if key == "check":
                    lines.append(f"{label}={_circuit_bit(device, port)}")
                elif key == "checkactive":
                    state = "active" if _active(device, port) else "inactive"
                    lines.append(f"{label}={state}")
                elif key == "checkdirection":
                    lines.append(f"{label}={port.direction}")
                else:
                    raise CgiError(f"unknown parameter '{key[:32]}'")
        return text("".join(f"{line}\n" for line in lines))
    except CgiError as exc:
        return error_text(str(exc))


def _part(body: str) -> bytes:
    return f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\n{body}\r\n".encode()


async def _monitor(request: web.Request, ports: list[AxisPort]) -> web.StreamResponse:
    """Stream every change of ``ports`` until the client goes away."""
    device = device_of(request)
    if len(request.app.get(MONITORS, ())) >= MAX_STREAMS:
        return error_text("too many monitor streams", status=503)
    numbers = {p.port_id: p.cgi_number for p in ports}
    queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=1024)

    def accept(event: Event) -> bool:
        return event.topic in (Topic.INPUT, Topic.OUTPUT) and event.source in numbers

    def on_event(event: Event) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(event)

    subscription = device.subscribe(on_event, accept=accept, replay_state=False)
    task = asyncio.current_task()
    monitors = request.app.get(MONITORS)
    if task is not None and monitors is not None:
        monitors.add(task)
    response = web.StreamResponse(
        headers={
            "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
            "Cache-Control": "no-store",
        }
    )
    try:
        await response.prepare(request)
        last: dict[str, bool] = {}
        loop = asyncio.get_running_loop()
        keepalive_at = loop.time() + KEEPALIVE_S
        while True:
            transport = request.transport
            if not device.config.dialects.vapix.enabled:
                return response  # the dialect was turned off: it serves nothing any more
            if transport is None or transport.is_closing():
                return response  # the client went away: stop listening at once
            try:
                wait = max(0.0, min(_POLL_S, keepalive_at - loop.time()))
                event = await asyncio.wait_for(queue.get(), wait)
            except TimeoutError:
                if loop.time() >= keepalive_at:
                    await response.write(_part(""))
                    keepalive_at = loop.time() + KEEPALIVE_S
                continue
            active = bool(event.data.get("active"))
            if last.get(event.source) == active:
                continue  # a change of something else (armed, remaining time)
            last[event.source] = active
            number = numbers[event.source]
            if event.topic == Topic.INPUT:
                body = f"{number}I:{'/' if active else chr(92)}"
            else:
                body = f"{number}O:{'H' if active else 'L'}"
            await response.write(_part(body))
    except ConnectionResetError:
        return response  # the client went away
    finally:
        subscription.close()
        if task is not None and monitors is not None:
            monitors.discard(task)


async def close_monitors(app: web.Application) -> None:
    for task in list(app.get(MONITORS, ())):
        task.cancel()


@routes.get("/axis-cgi/io/port.cgi")
@spec("VAPIX port.cgi: check, checkactive, action, monitor", role=Role.VIEWER, dialect=DIALECT)
async def port_cgi(request: web.Request) -> web.StreamResponse:
    return await _handle(request, _lookup_all(request), lambda p, n: f"port{p.cgi_number}")


@routes.get("/axis-cgi/io/input.cgi")
@spec("VAPIX 2 input.cgi: check, monitor", role=Role.VIEWER, dialect=DIALECT)
async def input_cgi(request: web.Request) -> web.StreamResponse:
    return await _handle(request, _lookup_direction(request, "input"), lambda p, n: f"input{n}")


@routes.get("/axis-cgi/io/output.cgi")
@spec("VAPIX 2 output.cgi: check, action", role=Role.VIEWER, dialect=DIALECT)
async def output_cgi(request: web.Request) -> web.StreamResponse:
    return await _handle(request, _lookup_direction(request, "output"), lambda p, n: f"output{n}")
