"""Routes describing the device itself: identity, version, health."""

from __future__ import annotations

from aiohttp import web

from camio import __version__
from camio.api.context import caller, device_of
from camio.api.schemas import DeviceInfo, Health, respond
from camio.api.spec import spec
from camio.store.users import Role

routes = web.RouteTableDef()


@routes.get("/api/v1/health")
@spec("Liveness probe (no credentials needed)", role=None, response=Health)
async def health(request: web.Request) -> web.Response:
    """Unauthenticated liveness probe; says nothing about the device but that it runs."""
    return respond(Health, {"status": "ok"})


@routes.get("/api/v1/device")
@spec(
    "Identity, version, driver, configuration revision, uptime and latency figures",
    role=Role.VIEWER,
    response=DeviceInfo,
)
async def get_device(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    device = device_of(request)
    ident = device.config.device
    stats = device.stats
    return respond(
        DeviceInfo,
        {
            "name": ident.name,
            "brand": ident.brand,
            "model": ident.model,
            "serial": ident.serial,
            "firmware": ident.firmware,
            "version": __version__,
            "driver": device.driver.name,
            "revision": device.revision,
            "uptime_s": (device.clock.wall_ns() - stats.started_wall_ns) / 1e9,
            "stats": {
                "input_edges": stats.input_edges,
                "rule_actions": stats.rule_actions,
                "last_latency_us": None
                if stats.last_latency_ns is None
                else stats.last_latency_ns / 1000,
                "events_published": device.bus.published,
                "last_event_id": device.bus.last_id,
            },
        },
    )
