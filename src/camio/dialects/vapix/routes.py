"""Mounting the VAPIX dialect into the device's HTTP application.

:func:`tables` lists every route table of the dialect (the WebSocket event stream's too, when
its module is present); :class:`VapixRealm` is the auth middleware's resolver for routes whose
spec says ``dialect="vapix"``: it answers 404 while the dialect (or, for the .txt files, the
legacy files) is off, read from the live configuration at every request, and otherwise returns
the authenticator of realm ``AXIS_<SERIAL>``: Digest MD5 with qop=auth (and Basic when
``allow_basic``), sharing accounts, throttles and audit with the native API.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterator

from aiohttp import web

from camio.api.auth import Authenticator, RealmCache
from camio.api.context import DEVICE
from camio.dialects.vapix import (
    discovery,
    legacy,
    paramcgi,
    portcgi,
    portmanagement,
    users,
    virtualinput,
)
from camio.dialects.vapix.common import DIALECT
from camio.dialects.vapix.identity import axis_identity

__all__ = ["DIALECT", "VapixRealm", "setup", "tables"]

#: Modules of the dialect owned elsewhere, mounted when present.
_OPTIONAL = ("camio.dialects.vapix.websocket",)


def tables() -> Iterator[web.RouteTableDef]:
    yield from (
        discovery.routes,
        paramcgi.routes,
        portmanagement.routes,
        portcgi.routes,
        virtualinput.routes,
        users.routes,
        legacy.routes,
    )
    for name in _OPTIONAL:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        yield module.routes


class VapixRealm:
    """The auth middleware's resolver for VAPIX routes (see the module docstring)."""

    def __init__(self, base: Authenticator) -> None:
        self._realms = RealmCache(base)

    def __call__(self, request: web.Request) -> Authenticator:
        device = request.app[DEVICE]
        config = device.config.dialects.vapix
        if not config.enabled:
            raise web.HTTPNotFound()
        if not config.legacy_files and request.path in legacy.LEGACY_PATHS:
            raise web.HTTPNotFound()
        realm = axis_identity(device.config.device).realm
        return self._realms.get(realm, allow_basic=config.allow_basic)


def setup(app: web.Application) -> None:
    """Add the dialect's routes and its shutdown hook to ``app``."""
    for table in tables():
        app.add_routes(table)
    app[portcgi.MONITORS] = set[asyncio.Task[None]]()
    app.on_shutdown.append(portcgi.close_monitors)
