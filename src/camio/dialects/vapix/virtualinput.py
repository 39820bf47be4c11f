"""Virtual inputs (``virtualinput/activate.cgi``, ``deactivate.cgi``) and the manual trigger
(``io/virtualinput.cgi``).

activate/deactivate take ``schemaversion=1``, ``port`` 1-32 and an optional ``duration`` in
seconds (the input reverts by itself afterwards) and answer ``text/xml``. Error codes (camio's
choice; real-device texts were not available): 10 unsupported or missing schema version,
20 invalid port, 30 invalid duration, 40 not allowed, 50 other.

virtualinput.cgi drives the manual trigger with the port.cgi action language
(``action=6:/2000\\``: active for 2 s); the port number is accepted as written (Axis devices
use ``Properties.IO.ManualTriggerNbr``, 6 here), since camio has one manual trigger.
"""

from __future__ import annotations

from aiohttp import web

from camio.api.spec import spec
from camio.dialects.vapix.common import (
    DIALECT,
    caller,
    cause,
    cgi_params,
    device_of,
    error_text,
    text,
)
from camio.dialects.vapix.sequence import ActionError, parse_action
from camio.engine.errors import DeviceError
from camio.store.users import Role

routes = web.RouteTableDef()

_NS = 'xmlns="http://www.axis.com/vapix/http_cgi/virtualinput1" SchemaVersion="1.1"'


def _xml(body: str) -> web.Response:
    doc = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<VirtualInputResponse {_NS}>{body}</VirtualInputResponse>\n"
    )
    return web.Response(text=doc, content_type="text/xml", charset="utf-8")


def _error(code: int, description: str) -> web.Response:
    return _xml(
        "<Error><GeneralError>"
        f"<ErrorCode>{code}</ErrorCode><ErrorDescription>{description}</ErrorDescription>"
        "</GeneralError></Error>"
    )


async def _virtual(request: web.Request, active: bool) -> web.Response:
    user = caller(request, Role.OPERATOR)
    params = dict(await cgi_params(request))
    if params.get("schemaversion", "").split(".")[0] != "1":
        return _error(10, "Unsupported or missing schemaversion")
    port = params.get("port", "")
    if not port.isdigit() or not 1 <= int(port) <= 32:
        return _error(20, "Invalid port, expected 1-32")
    duration_ms = None
    if "duration" in params:
        duration = params["duration"]
        if not duration.isdigit() or not 1 <= int(duration) <= 86_400:
            return _error(30, "Invalid duration, expected 1-86400 seconds")
        duration_ms = int(duration) * 1000
    device = device_of(request)
    number = int(port)
    was = bool(device.virtual_input_status()[number - 1]["active"])
    try:
        device.set_virtual_input(number, active, cause(request, user), duration_ms=duration_ms)
    except DeviceError as exc:
        return _error(50, str(exc)[:200])
    tag = "ActivateSuccess" if active else "DeactivateSuccess"
    changed = "true" if was != active else "false"
    return _xml(f"<Success><{tag}><StateChanged>{changed}</StateChanged></{tag}></Success>")


@routes.get("/axis-cgi/virtualinput/activate.cgi")
@spec("VAPIX virtual input: activate", role=Role.OPERATOR, dialect=DIALECT)
async def activate(request: web.Request) -> web.Response:
    return await _virtual(request, True)


@routes.get("/axis-cgi/virtualinput/deactivate.cgi")
@spec("VAPIX virtual input: deactivate", role=Role.OPERATOR, dialect=DIALECT)
async def deactivate(request: web.Request) -> web.Response:
    return await _virtual(request, False)


@routes.get("/axis-cgi/io/virtualinput.cgi")
@spec("VAPIX manual trigger with the action language", role=Role.OPERATOR, dialect=DIALECT)
async def manual_trigger(request: web.Request) -> web.Response:
    user = caller(request, Role.OPERATOR)
    params = await cgi_params(request)
    actions = [v for k, v in params if k == "action"]
    if len(actions) != 1:
        return error_text("exactly one action is required")
    try:
        action = parse_action(actions[0])
        device = device_of(request)
        steps = action.state_steps(current=bool(device.manual.active))
    except ActionError as exc:
        return error_text(f"invalid action: {exc}")
    device.run_manual_trigger_sequence(steps, cause(request, user))
    return text("")
