"""Mounting the Hikvision ISAPI dialect into the device's HTTP application.

:func:`tables` lists every route table of the dialect; :class:`IsapiRealm` is the auth
middleware's resolver for routes whose spec says ``dialect="isapi"``: it answers 404 while the
dialect is off (read from the live configuration at every request), and otherwise returns the
authenticator of realm ``IP Camera(<last five characters of the serial>)``, as Hikvision
firmware presents it: Digest MD5 with qop=auth (and Basic when ``allow_basic``), sharing
accounts, throttles and audit with the native API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from aiohttp import web

from camio.api.auth import Authenticator, RealmCache
from camio.api.context import DEVICE
from camio.dialects.isapi import alerts, deviceinfo, ioports, triggers
from camio.dialects.isapi.common import DIALECT
from camio.dialects.isapi.identity import hik_identity

__all__ = ["DIALECT", "IsapiRealm", "setup", "tables"]


def tables() -> Iterator[web.RouteTableDef]:
    yield from (deviceinfo.routes, triggers.routes, ioports.routes, alerts.routes)


class IsapiRealm:
    """The auth middleware's resolver for isapi routes (see the module docstring)."""

    def __init__(self, base: Authenticator) -> None:
        self._realms = RealmCache(base)

    def __call__(self, request: web.Request) -> Authenticator:
        device = request.app[DEVICE]
        config = device.config.dialects.isapi
        if not config.enabled:
            raise web.HTTPNotFound()
        realm = hik_identity(device.config.device).realm
        return self._realms.get(realm, allow_basic=config.allow_basic)


def setup(app: web.Application) -> None:
    """Add the dialect's routes and its shutdown hook to ``app``."""
    for table in tables():
        app.add_routes(table)
    app[alerts.STREAMS] = set[asyncio.Task[None]]()
    app.on_shutdown.append(alerts.close_streams)
