"""``GET /ISAPI/System/deviceInfo``: who the device is (see :mod:`.identity`).

pyhik's ``HikCamera`` needs the namespace (it splits every tag on ``}``) and keeps
``deviceName`` and ``deviceID``; its ``ISAPIClient`` reads ``serialNumber``, ``deviceName``,
``model``, ``deviceType`` and ``firmwareVersion``.
"""

from __future__ import annotations

from aiohttp import web

from camio.api.spec import spec
from camio.dialects.isapi.common import DIALECT, caller, device_of, document, handled, xml_response
from camio.dialects.isapi.identity import hik_identity
from camio.store.users import Role

routes = web.RouteTableDef()


@routes.get("/ISAPI/System/deviceInfo")
@spec("ISAPI: device information (DeviceInfo)", role=Role.VIEWER, dialect=DIALECT)
@handled
async def device_info(request: web.Request) -> web.StreamResponse:
    caller(request, Role.VIEWER)
    identity = hik_identity(device_of(request).config.device)
    fields: list[tuple[str, str]] = identity.device_info()
    return xml_response(document("DeviceInfo", list(fields)))
