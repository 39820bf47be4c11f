"""API discovery (``apidiscovery.cgi``) and basic device information
(``basicdeviceinfo.cgi``).

Discovery lists only what camio serves: a client trusts the list, and an API that is listed but
missing hides the ports (the axis library then never falls back to param.cgi).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from aiohttp import web

from camio.api.spec import spec
from camio.dialects.vapix import jsonapi
from camio.dialects.vapix.common import DIALECT, caller, device_of
from camio.dialects.vapix.identity import axis_identity
from camio.store.users import Role

routes = web.RouteTableDef()

_DOC = "https://developer.axis.com/vapix/"
_APIS = (
    ("api-discovery", "1.0", "API Discovery Service"),
    ("basic-device-info", "1.1", "Basic Device Information"),
    ("io-port-management", "1.0", "IO Port Management"),
    ("param-cgi", "1.0", "Legacy Parameter Handling"),
)
_WEBSOCKET = ("event-streaming-over-websocket", "1.0", "Event streaming over WebSocket")


def websocket_available() -> bool:
    """The WebSocket event stream is a module of its own; listed only when it is there."""
    return importlib.util.find_spec("camio.dialects.vapix.websocket") is not None


def api_list() -> list[dict[str, str]]:
    apis = list(_APIS)
    if websocket_available():
        apis.append(_WEBSOCKET)
    return [
        {"id": api_id, "version": version, "name": name, "docLink": _DOC, "status": "official"}
        for api_id, version, name in apis
    ]


async def _discovery(request: web.Request, req: jsonapi.JsonRequest) -> dict[str, Any]:
    caller(request, Role.VIEWER)
    if req.method == "getApiList":
        return {"apiList": api_list()}
    raise jsonapi.ApiError(jsonapi.METHOD_NOT_SUPPORTED)


@routes.post("/axis-cgi/apidiscovery.cgi")
@spec("VAPIX API discovery (getApiList)", role=Role.VIEWER, dialect=DIALECT)
async def apidiscovery(request: web.Request) -> web.Response:
    return await jsonapi.handle(request, ("1.0",), _discovery)


async def _basic_info(request: web.Request, req: jsonapi.JsonRequest) -> dict[str, Any]:
    caller(request, Role.VIEWER)
    props = axis_identity(device_of(request).config.device).basic_device_info()
    if req.method in ("getAllProperties", "getAllUnrestrictedProperties"):
        return {"propertyList": props}
    if req.method == "getProperties":
        params = req.params if isinstance(req.params, dict) else {}
        wanted = params.get("propertyList")
        if not isinstance(wanted, list) or not wanted:
            raise jsonapi.ApiError(jsonapi.MISSING_PARAMETER, "propertyList is missing")
        unknown = [name for name in wanted if name not in props]
        if unknown:
            raise jsonapi.ApiError(
                jsonapi.INVALID_PARAMETER, f"unknown property {str(unknown[0])[:64]!r}"
            )
        return {"propertyList": {name: props[name] for name in wanted}}
    raise jsonapi.ApiError(jsonapi.METHOD_NOT_SUPPORTED)


@routes.post("/axis-cgi/basicdeviceinfo.cgi")
@spec("VAPIX basic device information", role=Role.VIEWER, dialect=DIALECT)
async def basicdeviceinfo(request: web.Request) -> web.Response:
    return await jsonapi.handle(request, ("1.0", "1.1"), _basic_info)
