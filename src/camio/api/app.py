"""The native REST API application: routes, authentication, JSON errors."""

from __future__ import annotations

from aiohttp import web

from camio.api import config_routes, device_routes, events, ports
from camio.api.auth import Authenticator, auth_middleware
from camio.api.context import DEVICE
from camio.api.errors import error_middleware
from camio.engine.device import Device

PUBLIC_PATHS = frozenset({"/api/v1/health"})


def build_api(device: Device, authenticator: Authenticator) -> web.Application:
    """An aiohttp application serving ``/api/v1`` for ``device``.

    The error middleware sits outside authentication so that auth refusals and unknown routes
    get the same JSON shape as every other error.
    """
    app = web.Application(
        middlewares=[error_middleware, auth_middleware(authenticator, public_paths=PUBLIC_PATHS)],
        client_max_size=1 << 20,
    )
    app[DEVICE] = device
    for table in (ports.routes, config_routes.routes, events.routes, device_routes.routes):
        app.add_routes(table)
    return app
