"""alarm.cgi: how many alarm inputs/outputs there are and which are active.

``getInState`` reports the *alarm* condition (bit ``i`` = input channel ``i`` active after its
SensorType NO/NC), ``getOutState`` the outputs that are energised (bit ``i`` = output channel
``i`` active). amcrest 1.9.9's ``alarm_*`` helpers request the literal
``alarm.cgi?action={alarm_name}`` (a missing f-string prefix): that gets the normal Error, as
the device cannot know which of the four was meant.
"""

from __future__ import annotations

from aiohttp import web

from camio.api.spec import spec
from camio.dialects.dahua.common import DIALECT, DahuaError, action_of, caller, device_of, error
from camio.dialects.dahua.common import lines as text_lines
from camio.dialects.dahua.numbering import bitmask, input_ids, output_ids
from camio.store.users import Role

routes = web.RouteTableDef()


@routes.get("/cgi-bin/alarm.cgi")
@spec(
    "Dahua alarm.cgi: getInSlots, getOutSlots, getInState, getOutState",
    role=Role.VIEWER,
    dialect=DIALECT,
    content_type="text/plain",
)
async def alarm_cgi(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    device = device_of(request)
    try:
        action = action_of(request)
    except DahuaError:
        return error()
    if action == "getInSlots":
        result = len(input_ids(device))
    elif action == "getOutSlots":
        result = len(output_ids(device))
    elif action == "getInState":
        result = bitmask([device.inputs[pid].active for pid in input_ids(device)])
    elif action == "getOutState":
        result = bitmask([device.outputs[pid].active for pid in output_ids(device)])
    else:
        return error()
    return text_lines([("result", result)])
