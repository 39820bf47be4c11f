"""The ``param.cgi`` route: GET with a query or POST with a form body (any Content-Type)."""

from __future__ import annotations

from aiohttp import web

from camio.api.spec import spec
from camio.dialects.vapix.common import DIALECT, caller, cgi_params, device_of, error_text, text
from camio.dialects.vapix.params import ParamError, apply_update, list_params, plan_update
from camio.engine.errors import DeviceError
from camio.store.users import Role

routes = web.RouteTableDef()


async def _param(request: web.Request) -> web.Response:
    params = await cgi_params(request)
    device = device_of(request)
    actions = [v for k, v in params if k == "action"]
    if len(actions) != 1:
        return error_text("exactly one action (list or update) is required")
    if actions[0] == "list":
        caller(request, Role.VIEWER)
        groups = ",".join(v for k, v in params if k == "group")
        return text(list_params(device, groups or None))
    if actions[0] == "update":
        caller(request, Role.ADMIN)
        assignments = [(k, v) for k, v in params if k != "action"]
        try:
            patches = plan_update(device, assignments)
            apply_update(device, patches)
        except ParamError as exc:
            return text(f"# Error: {exc.message}\n")
        except DeviceError as exc:
            return text(f"# Error: {str(exc)[:200]}\n")
        return text("OK\n")
    return error_text(f"unknown action '{actions[0][:32]}'")


@routes.get("/axis-cgi/param.cgi")
@spec("VAPIX param.cgi (list, update)", role=Role.VIEWER, dialect=DIALECT)
async def param_get(request: web.Request) -> web.Response:
    return await _param(request)


@routes.post("/axis-cgi/param.cgi")
@spec("VAPIX param.cgi (list, update), form body", role=Role.VIEWER, dialect=DIALECT)
async def param_post(request: web.Request) -> web.Response:
    return await _param(request)
