"""The device's HTTP application: native API, account routes, web interface, security."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from aiohttp import web

from camio.api import (
    audio_routes,
    config_routes,
    device_routes,
    events,
    media_routes,
    mqtt_routes,
    ports,
    recipients_routes,
    session_routes,
    users_routes,
)
from camio.api.audit import audit_middleware, durable_middleware
from camio.api.auth import Authenticator, auth_middleware
from camio.api.context import AUTHENTICATOR, DEVICE, SESSIONS, USERS
from camio.api.errors import error_middleware
from camio.api.headers import security_headers
from camio.api.redirect import redirect_middleware
from camio.api.session_routes import SETUP, SetupCode
from camio.api.sessions import SessionManager
from camio.dialects.dahua import routes as dahua
from camio.dialects.foscam import routes as foscam
from camio.dialects.isapi import routes as isapi
from camio.dialects.onvif import mount as onvif
from camio.dialects.vapix import routes as vapix
from camio.engine.device import Device

PUBLIC_PATHS = frozenset({"/api/v1/health"})

#: Route tables of optional modules, added when present (each one is a folder's concern).
_OPTIONAL_ROUTES = ("camio.api.openapi_routes", "camio.api.system_routes", "camio.web.routes")


def _optional_tables() -> Iterable[web.RouteTableDef]:
    for name in _OPTIONAL_ROUTES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # Absent (the module or its package): skip. A missing import inside it: raise.
            if exc.name is None or not name.startswith(exc.name):
                raise
            continue
        yield module.routes


def build_api(
    device: Device,
    authenticator: Authenticator,
    *,
    sessions: SessionManager | None = None,
    setup_code: SetupCode | None = None,
) -> web.Application:
    """The aiohttp application serving the API and the web interface for ``device``.

    The error middleware sits outside authentication so that auth refusals and unknown routes
    get the same JSON shape as every other error; security headers go on every response.
    """
    sessions = sessions or SessionManager(authenticator.users)
    onvif_realm = onvif.OnvifRealm(authenticator)
    app = web.Application(
        middlewares=[
            redirect_middleware,
            error_middleware,
            auth_middleware(
                authenticator,
                public_paths=PUBLIC_PATHS,
                sessions=sessions,
                realms={
                    vapix.DIALECT: vapix.VapixRealm(authenticator),
                    onvif.DIALECT: onvif_realm,
                    isapi.DIALECT: isapi.IsapiRealm(authenticator),
                    dahua.DIALECT: dahua.DahuaRealm(authenticator),
                    foscam.DIALECT: foscam.FoscamRealm(authenticator),
                },
            ),
            durable_middleware,
            audit_middleware,
        ],
        client_max_size=1 << 20,
    )
    app[DEVICE] = device
    app[USERS] = authenticator.users
    app[AUTHENTICATOR] = authenticator
    app[SESSIONS] = sessions
    if setup_code is not None:
        app[SETUP] = setup_code
    tables = [
        ports.routes,
        config_routes.routes,
        events.routes,
        device_routes.routes,
        session_routes.routes,
        users_routes.routes,
        recipients_routes.routes,
        audio_routes.routes,
        media_routes.routes,
        mqtt_routes.routes,
        *_optional_tables(),
    ]
    for table in tables:
        app.add_routes(table)
    vapix.setup(app)  # the Axis dialect: /axis-cgi/..., the camera-server .txt files
    onvif.setup(app, onvif_realm)  # ONVIF: SOAP services under /onvif/
    isapi.setup(app)  # Hikvision: /ISAPI/...
    dahua.setup(app)  # Dahua / Amcrest: /cgi-bin/*.cgi
    foscam.setup(app)  # Foscam: /cgi-bin/CGIProxy.fcgi
    app.on_response_prepare.append(security_headers)
    app[events.STREAMS] = set()
    app.on_shutdown.append(events.close_streams)
    return app
