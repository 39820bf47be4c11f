"""The I/O files of the Axis camera servers (AXIS 200/240 manuals): ``input.txt``,
``relayon.txt``, ``relayoff.txt``, at the root and under ``/io/`` as the manuals show them.

``input.txt`` has one line per input, numbered from 1 in terminal order::

    input:1 current:0 last:1 pulse:2 time_of_change:12.22

``current`` is the input's logical state now (1 = active), ``last`` its state at the previous
read, ``pulse`` the activations since the previous read, ``time_of_change`` the local time
(HH.MM, the device's time zone) of the last change. Reading resets ``last`` and ``pulse``.
``relayon.txt`` / ``relayoff.txt`` switch the first relay output (terminal order) and answer
``Relay is On`` / ``Relay is Off``. All three need an administrator ("root access").
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from aiohttp import web

from camio.api.spec import spec
from camio.core.clock import NS_PER_S
from camio.dialects.vapix.common import DIALECT, caller, cause, device_of, text
from camio.dialects.vapix.numbering import AxisNumbering
from camio.engine.device import Device
from camio.store.users import Role

routes = web.RouteTableDef()

INPUT_PATHS = ("/input.txt", "/io/input.txt")
RELAY_ON_PATHS = ("/relayon.txt", "/io/relayon.txt")
RELAY_OFF_PATHS = ("/relayoff.txt", "/io/relayoff.txt")
LEGACY_PATHS = frozenset(INPUT_PATHS + RELAY_ON_PATHS + RELAY_OFF_PATHS)


def _local_hhmm(device: Device, wall_ns: int) -> str:
    try:
        zone = ZoneInfo(device.config.device.timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    moment = datetime.fromtimestamp(wall_ns / NS_PER_S, tz=UTC).astimezone(zone)
    return moment.strftime("%H.%M")


def input_txt(device: Device) -> str:
    """The input.txt text; reads (and so resets) every input's counters."""
    lines: list[str] = []
    clock = device.clock
    number = 0
    for port in AxisNumbering(device).ports():
        if port.direction != "input":
            continue
        number += 1
        counters = device.read_input_counters(port.port_id)
        changed_ns = device.input(port.port_id).changed_mono_ns
        wall = clock.wall_ns() - (clock.monotonic_ns() - changed_ns)
        lines.append(
            f"input:{number} current:{int(counters.current)} last:{int(counters.last)} "
            f"pulse:{counters.pulses} time_of_change:{_local_hhmm(device, wall)}"
        )
    return "".join(f"{line}\n" for line in lines)


@routes.get("/input.txt")
@routes.get("/io/input.txt")
@spec("Axis camera server input.txt", role=Role.ADMIN, dialect=DIALECT)
async def input_file(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    return text(input_txt(device_of(request)))


async def _relay(request: web.Request, on: bool) -> web.Response:
    user = caller(request, Role.ADMIN)
    device = device_of(request)
    outputs = [p for p in AxisNumbering(device).ports() if p.direction == "output"]
    if not outputs:
        return text("No relay\n", status=404)
    device.set_output(outputs[0].port_id, on, cause(request, user))
    return text("Relay is On\n" if on else "Relay is Off\n")


@routes.get("/relayon.txt")
@routes.get("/io/relayon.txt")
@spec("Axis camera server relayon.txt", role=Role.ADMIN, dialect=DIALECT)
async def relay_on(request: web.Request) -> web.Response:
    return await _relay(request, True)


@routes.get("/relayoff.txt")
@routes.get("/io/relayoff.txt")
@spec("Axis camera server relayoff.txt", role=Role.ADMIN, dialect=DIALECT)
async def relay_off(request: web.Request) -> web.Response:
    return await _relay(request, False)
