"""magicBox.cgi (who the device is) and global.cgi (its clock), as amcrest and HA call them.

amcrest logs in with ``magicBox.cgi?action=getMachineName`` (Basic first, Digest after a 401),
then reads ``getSerialNo``; Home Assistant adds ``getVendor``, ``getDeviceType``,
``getSoftwareVersion`` and polls ``global.cgi?action=getCurrentTime`` as its online check.
Setters of either CGI (setCurrentTime, reboot, ...) are not implemented: Error, nothing
changes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import web

from camio.api.spec import spec
from camio.dialects.dahua.common import (
    DIALECT,
    DahuaError,
    action_of,
    caller,
    device_of,
    error,
    lines,
)
from camio.dialects.dahua.identity import HARDWARE_VERSION, PROCESSOR, DahuaIdentity, dahua_identity
from camio.store.users import Role

routes = web.RouteTableDef()

_Getter = Callable[[DahuaIdentity], list[tuple[str, object]]]

_MAGIC_BOX: dict[str, _Getter] = {
    "getMachineName": lambda i: [("name", i.machine_name)],
    "getSerialNo": lambda i: [("sn", i.serial)],
    "getDeviceType": lambda i: [("type", i.device_type)],
    "getDeviceClass": lambda i: [("type", "IPC")],
    "getVendor": lambda i: [("vendor", i.vendor)],
    "getSoftwareVersion": lambda i: [("version", i.software_version)],
    "getHardwareVersion": lambda i: [("version", HARDWARE_VERSION)],
    "getSystemInfo": lambda i: [
        ("appAutoStart", "true"),
        ("deviceType", i.device_type),
        ("hardwareVersion", HARDWARE_VERSION),
        ("processor", PROCESSOR),
        ("serialNumber", i.serial),
        ("updateSerial", i.device_type),
    ],
}


@routes.get("/cgi-bin/magicBox.cgi")
@spec(
    "Dahua magicBox.cgi: device name, serial, type, vendor, versions",
    role=Role.VIEWER,
    dialect=DIALECT,
    content_type="text/plain",
)
async def magic_box(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    try:
        getter = _MAGIC_BOX.get(action_of(request))
        if getter is None:
            raise DahuaError("unknown action")
    except DahuaError:
        return error()
    return lines(getter(dahua_identity(device_of(request).config.device)))


@routes.get("/cgi-bin/global.cgi")
@spec(
    "Dahua global.cgi: getCurrentTime", role=Role.VIEWER, dialect=DIALECT, content_type="text/plain"
)
async def global_cgi(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    try:
        if action_of(request) != "getCurrentTime":
            raise DahuaError("unknown action")
    except DahuaError:
        return error()
    device = device_of(request)
    zone = ZoneInfo(device.config.device.timezone)
    now = datetime.fromtimestamp(device.clock.wall_ns() / 1e9, zone)
    return lines([("result", now.strftime("%Y-%m-%d %H:%M:%S"))])
