"""``GET /ISAPI/Event/triggers``: one ``IO-<n>`` event trigger per alarm input.

Each trigger names its input in ``inputIOPortID`` and notifies the ``center`` (the alarm
centre: the alertStream), which is what pyhik's ``HikCamera`` looks for to create an ``I/O``
sensor per input. A disabled input keeps its trigger (its id stays put) with no notification,
so clients create no sensor for it. Note that pyhik calls any device with a channel above 1 an
NVR: with two inputs or more, Home Assistant treats camio as an NVR.
"""

from __future__ import annotations

from aiohttp import web

from camio.api.spec import spec
from camio.dialects.isapi.common import (
    DIALECT,
    Children,
    caller,
    device_of,
    document,
    handled,
    xml_response,
)
from camio.dialects.isapi.numbering import HikNumbering
from camio.engine.device import Device
from camio.store.users import Role

routes = web.RouteTableDef()


def trigger_list(device: Device) -> Children:
    items: Children = []
    for port in HikNumbering(device).inputs():
        notifications: Children = []
        if device.input(port.port_id).config.enabled:
            notifications.append(
                (
                    "EventTriggerNotification",
                    [
                        ("id", "center"),
                        ("notificationMethod", "center"),
                        ("notificationRecurrence", "beginning"),
                    ],
                )
            )
        items.append(
            (
                "EventTrigger",
                [
                    ("id", f"IO-{port.hik_id}"),
                    ("eventType", "IO"),
                    ("eventDescription", "IO Event trigger Information"),
                    ("inputIOPortID", str(port.hik_id)),
                    ("EventTriggerNotificationList", notifications),
                ],
            )
        )
    return items


@routes.get("/ISAPI/Event/triggers")
@spec("ISAPI: event triggers (one IO trigger per input)", role=Role.VIEWER, dialect=DIALECT)
@handled
async def event_triggers(request: web.Request) -> web.StreamResponse:
    caller(request, Role.VIEWER)
    return xml_response(document("EventTriggerList", trigger_list(device_of(request))))
